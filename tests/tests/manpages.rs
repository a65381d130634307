//! The man pages `mailmig generate man` writes: one for mailmig(8) and for every command of the
//! command line — found here independently of the generator, by walking `mailmig ... --help` —
//! each rendering without a warning (`groff -man -ww`) and through `man -l`; and the completion
//! scripts, which name every top-level command.

use std::collections::BTreeSet;

use camino::Utf8Path;
use mailmig_tests::{mailmig, require, run};

/// The subcommands `mailmig PATH --help` lists under `Commands:` (clap's `help` left out).
fn subcommands(path: &[String]) -> Vec<String> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let r = mailmig(&args);
    assert_eq!(r.code, 0, "mailmig {args:?}: {}", r.err());
    r.out()
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command path, depth first: `[]`, `["map"]`, `["map", "check"]`, ...
fn command_paths() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut todo = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        for sub in subcommands(&path) {
            let mut child = path.clone();
            child.push(sub);
            todo.push(child);
        }
        out.push(path);
    }
    out
}

fn page_name(path: &[String]) -> String {
    std::iter::once("mailmig".to_owned())
        .chain(path.iter().cloned())
        .collect::<Vec<_>>()
        .join("-")
}

fn generate(dir: &Utf8Path) -> BTreeSet<String> {
    let r = mailmig(&["generate", "man", dir.as_str()]);
    assert_eq!(r.code, 0, "{}", r.err());
    fs_err::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_command_has_a_page_and_no_page_is_extra() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = Utf8Path::from_path(dir.path()).expect("utf-8");
    let files = generate(dir);
    let paths = command_paths();
    assert!(paths.len() >= 25, "{paths:?}");
    for nested in [["map", "check"], ["passwd", "set"]] {
        assert!(paths.iter().any(|p| p == &nested), "{nested:?} not walked");
    }
    let expected: BTreeSet<String> = paths
        .iter()
        .map(|p| format!("{}.8", page_name(p)))
        .collect();
    assert_eq!(files, expected);
    assert!(
        !files.iter().any(|f| f.contains("generate")),
        "the hidden generator has a page"
    );
}

#[test]
fn pages_render_without_warnings() {
    if !require(&["groff", "man"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = Utf8Path::from_path(dir.path()).expect("utf-8");
    for file in generate(dir) {
        let page = dir.join(&file);
        let text = fs_err::read_to_string(&page).expect("read");
        assert!(text.is_ascii(), "{file}: not ASCII roff");
        let r = run("groff", &["-man", "-Tutf8", "-ww", "-z", page.as_str()]);
        assert_eq!(r.code, 0, "{file}: {}", r.err());
        assert!(r.err().is_empty(), "groff warns on {file}: {}", r.err());
        let r = run_man(&page);
        assert_eq!(r.code, 0, "man -l {file}: {}", r.err());
        assert!(r.err().is_empty(), "man -l {file}: {}", r.err());
        let name = file.trim_end_matches(".8");
        for section in ["NAME", "SYNOPSIS", "OPTIONS", "EXIT STATUS", "SEE ALSO"] {
            assert!(
                r.out().contains(section),
                "{file} lacks {section}: {}",
                r.out()
            );
        }
        let words = r.out().split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains(&format!("NAME {name} - ")),
            "{file}: NAME line"
        );
    }
    let top = run_man(&dir.join("mailmig.8")).out();
    for section in ["FILES", "EXAMPLES", "/var/lib/mailmig", "75", "VERSION"] {
        assert!(top.contains(section), "mailmig(8) lacks {section}");
    }
}

fn run_man(page: &Utf8Path) -> mailmig_tests::Run {
    mailmig_tests::capture(
        duct::cmd("man", ["-l", page.as_str()])
            .env("MANWIDTH", "100")
            .env("LANG", "C.UTF-8"),
        "man",
        None,
    )
}

#[test]
fn completions_name_every_top_level_command() {
    let commands = subcommands(&[]);
    for shell in ["bash", "zsh", "fish"] {
        let r = mailmig(&["generate", "completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.err());
        let script = r.out();
        for command in &commands {
            assert!(
                script.contains(command.as_str()),
                "{shell} completion lacks {command}"
            );
        }
    }
    assert_eq!(mailmig(&["generate", "completions", "tcsh"]).code, 64);
}

#[test]
fn version_names_the_commit() {
    let r = mailmig(&["--version"]);
    assert_eq!(r.code, 0);
    let head = run(
        "git",
        &[
            "-C",
            mailmig_tests::workspace_root().as_str(),
            "rev-parse",
            "--short=12",
            "HEAD",
        ],
    );
    let expected = if head.code == 0 {
        format!(
            "mailmig {} (commit {})\n",
            env!("CARGO_PKG_VERSION"),
            head.out().trim()
        )
    } else {
        format!("mailmig {} (commit unknown)\n", env!("CARGO_PKG_VERSION"))
    };
    assert_eq!(r.out(), expected);
}
