//! The man page and shell completions, generated from the command line's clap definitions
//! ([`crate::cli::Cli`]) by the binary itself, so what the package ships always matches the
//! binary it ships (`keepserver generate man|completions DIR`, run by scripts/build-deb).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Artifact, Cli};

/// Writes `what` into `dir` (created if missing); returns the files written.
pub fn write(what: Artifact, dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    match what {
        Artifact::Man => {
            let path = dir.join("keepserver.1");
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            fs::write(&path, page)?;
            Ok(vec![path])
        }
        Artifact::Completions => [Shell::Bash, Shell::Zsh, Shell::Fish]
            .into_iter()
            .map(|shell| clap_complete::generate_to(shell, &mut Cli::command(), "keepserver", dir))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_man_page_without_the_hidden_command_and_three_completions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let man = write(Artifact::Man, dir.path()).expect("man");
        let page = fs::read_to_string(&man[0]).expect("read");
        assert!(page.contains(".TH keepserver 1"), "{page}");
        assert!(page.contains("reload"), "{page}");
        assert!(!page.contains("generate"), "{page}");
        let mut names: Vec<String> = write(Artifact::Completions, dir.path())
            .expect("completions")
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["_keepserver", "keepserver.bash", "keepserver.fish"]);
        let bash = fs::read_to_string(dir.path().join("keepserver.bash")).expect("bash");
        assert!(
            bash.contains("status") && bash.contains("--workspace"),
            "{bash}"
        );
    }
}
