//! Rendering a lossless document: untouched pieces are ranges of the parsed bytes, edited ones
//! bytes of their own; adjacent ranges are written at once.

/// One piece of a document, in order.
pub(crate) enum Piece<'a> {
    /// `src[start..end]`.
    Src(usize, usize),
    /// Bytes an edit made.
    Owned(&'a [u8]),
}

/// Call `f` with the document's bytes in order, coalescing adjacent source ranges.
pub(crate) fn each_run<'a, E>(
    src: &[u8],
    pieces: impl Iterator<Item = Piece<'a>>,
    mut f: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut run: Option<(usize, usize)> = None;
    for piece in pieces {
        match (piece, run) {
            (Piece::Src(start, end), Some((s, e))) if e == start => run = Some((s, end)),
            (Piece::Src(start, end), _) => {
                if let Some((s, e)) = run {
                    f(&src[s..e])?;
                }
                run = Some((start, end));
            }
            (Piece::Owned(bytes), _) => {
                if let Some((s, e)) = run.take() {
                    f(&src[s..e])?;
                }
                f(bytes)?;
            }
        }
    }
    if let Some((s, e)) = run {
        f(&src[s..e])?;
    }
    Ok(())
}

/// The document's bytes in one buffer.
pub(crate) fn render<'a>(
    src: &[u8],
    pieces: impl Iterator<Item = Piece<'a>>,
    capacity: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    each_run(src, pieces, |bytes| {
        out.extend_from_slice(bytes);
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|never| match never {});
    out
}
