//! The man pages: mailmig(8) and one page per command, walked from the clap tree (a command added
//! to `args.rs` gets its page with no change here).

use clap_mangen::Man;

use super::sections;
use crate::version;

/// The manual section: mailmig is a system administration tool run by root.
pub(crate) const SECTION: &str = "8";

/// One man page: a command of the tree and where it sits.
pub(crate) struct Page {
    /// The command, built (global options propagated, display name `mailmig-map-check`).
    cmd: clap::Command,
    /// The subcommand names from the root (`["map", "check"]`; empty for mailmig(8)).
    path: Vec<String>,
}

/// Every page: the root, then each visible command depth-first (hidden ones such as `generate`
/// and clap's `help` are left out).
pub(crate) fn pages(cmd: clap::Command) -> Vec<Page> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(cmd, Vec::new(), &mut out);
    out
}

fn walk(cmd: clap::Command, path: Vec<String>, out: &mut Vec<Page>) {
    let children: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    out.push(Page {
        cmd,
        path: path.clone(),
    });
    for child in children {
        let mut child_path = path.clone();
        child_path.push(child.get_name().to_owned());
        walk(child, child_path, out);
    }
}

impl Page {
    /// `mailmig` or `mailmig-map-check`.
    pub(crate) fn name(&self) -> String {
        page_name(&self.path)
    }

    /// `mailmig-map-check.8`.
    pub(crate) fn file_name(&self) -> String {
        format!("{}.{SECTION}", self.name())
    }

    /// The page as roff source.
    pub(crate) fn render(&self) -> Result<Vec<u8>, std::io::Error> {
        let man = Man::new(self.cmd.clone())
            .title(self.name().to_uppercase())
            .section(SECTION)
            .date(version::DATE)
            .source(format!("mailmig {}", env!("CARGO_PKG_VERSION")))
            .manual("System Administration");
        let mut out = Vec::new();
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        man.render_synopsis_section(&mut out)?;
        man.render_description_section(&mut out)?;
        man.render_options_section(&mut out)?;
        if self.cmd.get_subcommands().any(|s| !s.is_hide_set()) {
            man.render_subcommands_section(&mut out)?;
        }
        let children: Vec<String> = self
            .cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_owned())
            .collect();
        sections::render(&self.path, &children).to_writer(&mut out)?;
        if self.path.is_empty() {
            man.render_version_section(&mut out)?;
        }
        Ok(ascii_roff(&String::from_utf8_lossy(&out)).into_bytes())
    }
}

/// Roff source in ASCII: every other character as the groff escape `\[uXXXX]`, so that the page
/// renders the same whatever the locale and without preconv(1).
fn ascii_roff(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

/// The page name of a command path: `mailmig`, `mailmig-map-check`.
pub(crate) fn page_name(path: &[String]) -> String {
    std::iter::once("mailmig")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Cli;
    use clap::CommandFactory;

    #[test]
    fn every_visible_command_has_a_page_and_hidden_ones_none() {
        let names: Vec<String> = pages(Cli::command()).iter().map(Page::name).collect();
        for expected in [
            "mailmig",
            "mailmig-migrate",
            "mailmig-map",
            "mailmig-map-check",
        ] {
            assert!(
                names.contains(&expected.to_owned()),
                "{expected} in {names:?}"
            );
        }
        assert!(!names
            .iter()
            .any(|n| n.contains("generate") || n.ends_with("-help")));
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(unique, names);
    }

    #[test]
    fn pages_carry_the_options_of_their_command_and_the_global_ones() {
        let pages = pages(Cli::command());
        let migrate = pages
            .iter()
            .find(|p| p.name() == "mailmig-migrate")
            .expect("migrate page");
        let text = String::from_utf8(migrate.render().expect("render")).expect("utf-8");
        assert!(text.contains("\n.TH MAILMIG-MIGRATE 8 "), "{text}");
        for option in ["users\\-from", "postfix\\-config", "SEE ALSO", "mailmig(8)"] {
            assert!(text.contains(option), "{option} in {text}");
        }
        assert!(text.is_ascii());
    }

    #[test]
    fn non_ascii_becomes_a_groff_escape() {
        assert_eq!(ascii_roff("a \u{2014} b"), "a \\[u2014] b");
    }
}
