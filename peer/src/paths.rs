//! Where peer keeps its state.
//!
//! Everything lives under one directory: `$PEER_HOME` if set, else `$XDG_STATE_HOME/peer`, else
//! `~/.local/state/peer`. Two instances with different `PEER_HOME`s never share anything, which
//! is how a host and a client (or two clients) coexist on one machine.

use std::path::{Path, PathBuf};

/// The state directories of one peer home.
#[derive(Debug, Clone)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// Resolves the home from the environment.
    pub fn from_env() -> std::io::Result<Paths> {
        if let Some(home) = std::env::var_os("PEER_HOME").filter(|v| !v.is_empty()) {
            return Ok(Paths::at(PathBuf::from(home)));
        }
        if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
            return Ok(Paths::at(PathBuf::from(state).join("peer")));
        }
        let home = std::env::var_os("HOME").ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "neither PEER_HOME nor HOME is set; set PEER_HOME to a directory for peer's state",
            )
        })?;
        Ok(Paths::at(PathBuf::from(home).join(".local/state/peer")))
    }

    /// A home at an explicit directory.
    pub fn at(root: PathBuf) -> Paths {
        Paths { root }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host's state directory.
    pub fn host_dir(&self) -> PathBuf {
        self.root.join("host")
    }

    /// The client's state directory.
    pub fn client_dir(&self) -> PathBuf {
        self.root.join("client")
    }

    /// The running host's control socket.
    pub fn control_socket(&self) -> PathBuf {
        self.host_dir().join("control.sock")
    }

    /// The host's SQLite database.
    pub fn host_db(&self) -> PathBuf {
        self.host_dir().join("peer.db")
    }

    /// The client's list of paired hosts.
    pub fn hosts_file(&self) -> PathBuf {
        self.client_dir().join("hosts.json")
    }
}

/// Creates `dir` (and parents) with mode 0700.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Writes `bytes` to `path` atomically (temp file + rename) with mode 0600.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_private_dir(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_0600_in_0700_dirs() {
        let t = tempfile::tempdir().expect("tempdir");
        let p = t.path().join("a/b/key");
        write_private_file(&p, b"secret").expect("write");
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(t.path().join("a/b"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        assert_eq!(std::fs::read(&p).expect("read"), b"secret");
    }
}
