//! Two pieces of work at once, on a machine with a second core.

use std::sync::OnceLock;

/// Whether the process may use a second core (asked once: the standard library reads the
/// cgroup's quota on every call).
pub(crate) fn two() -> bool {
    static TWO: OnceLock<bool> = OnceLock::new();
    *TWO.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2))
}

/// `here()` on this thread while `there()` runs on a second one; both results. A panic in
/// `there` goes on in this thread once `here` is done.
pub(crate) fn side_by_side<A, B: Send>(
    here: impl FnOnce() -> A,
    there: impl FnOnce() -> B + Send,
) -> (A, B) {
    std::thread::scope(|scope| {
        let there = scope.spawn(there);
        let here = here();
        let there = there
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (here, there)
    })
}
