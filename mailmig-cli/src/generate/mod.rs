//! `mailmig generate` (hidden): the man pages and shell completions, built from the same clap
//! definition as the command line, so every command is documented as it parses. The package
//! build (`packaging/build-deb.sh`) runs it; it reads no configuration and needs no root.

mod man;
mod sections;

use camino::Utf8PathBuf;
use clap::{CommandFactory, Subcommand, ValueEnum};

use crate::args::Cli;
use crate::exit;
use crate::output;
use crate::report::Failure;

/// What to generate.
#[derive(Debug, Subcommand)]
pub(crate) enum GenerateCommand {
    /// Write mailmig(8) and one page per command (mailmig-migrate(8), mailmig-map-check(8), ...)
    /// into DIR, one file per page; print their paths.
    Man {
        /// The directory (created when missing).
        #[arg(value_name = "DIR")]
        dir: Utf8PathBuf,
    },
    /// Print the completion script for SHELL.
    Completions {
        /// The shell.
        #[arg(value_enum, value_name = "SHELL")]
        shell: Shell,
    },
}

/// The shells the package ships completions for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub(crate) fn run(cmd: &GenerateCommand) -> Result<u8, Failure> {
    match cmd {
        GenerateCommand::Man { dir } => write_man_pages(dir),
        GenerateCommand::Completions { shell } => completions(*shell),
    }
}

fn write_man_pages(dir: &Utf8PathBuf) -> Result<u8, Failure> {
    let cannot = |e: &std::io::Error| Failure::new(exit::CANTCREAT, format!("error: {e}"));
    fs_err::create_dir_all(dir).map_err(|e| cannot(&e))?;
    let mut listing = String::new();
    for page in man::pages(Cli::command()) {
        let path = dir.join(page.file_name());
        let text = page.render().map_err(|e| Failure::io(path.as_str(), &e))?;
        fs_err::write(&path, text).map_err(|e| cannot(&e))?;
        listing.push_str(&format!("{path}\n"));
    }
    output::stdout(listing.as_bytes())?;
    Ok(exit::OK)
}

fn completions(shell: Shell) -> Result<u8, Failure> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mailmig", &mut script);
    output::stdout(&script)?;
    Ok(exit::OK)
}
