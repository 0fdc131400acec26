//! `peer completions SHELL` and `peer man`: generated from the command-line definition, so they
//! never disagree with it.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use clap::CommandFactory as _;

use super::Cli;

pub(super) const COMPLETIONS_HELP: &str = "\
Load them in the current shell, or install them for every new one:
  bash:  source <(peer completions bash)
         peer completions bash > ~/.local/share/bash-completion/completions/peer
  zsh:   peer completions zsh > ~/.zfunc/_peer      (with fpath+=(~/.zfunc) before compinit)
  fish:  peer completions fish > ~/.config/fish/completions/peer.fish";

/// Writes the completion script for `shell` to stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "peer", &mut out);
    write_stdout(&out)
}

/// Writes the manual page to stdout, or one page per command into `dir`.
pub(super) fn man(dir: Option<&Path>) -> Result<()> {
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), dir)
                .with_context(|| format!("writing the manual pages into {}", dir.display()))
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            write_stdout(&out)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        // `peer man | head` is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_is_in_the_manual_page_and_the_completions() {
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .expect("render");
        let page = String::from_utf8(page).expect("utf-8");
        assert!(page.starts_with(".ie"), "{}", &page[..80.min(page.len())]);
        assert!(page.contains(".TH peer 1"), "{page}");
        let mut bash = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "peer",
            &mut bash,
        );
        let bash = String::from_utf8(bash).expect("utf-8");
        for sub in Cli::command().get_subcommands() {
            let name = sub.get_name();
            assert!(page.contains(name), "{name} missing from the manual page");
            assert!(
                bash.contains(name),
                "{name} missing from the bash completions"
            );
        }
        assert!(bash.contains("--web-root"));
    }
}
