//! Files keepserver owns (haproxy.cfg, bgpd.conf and their records), written crash-safely and
//! off the runtime's one thread: a new file is written and fsynced beside its target, then
//! renamed over it and the directory fsynced, so the target is always either the old or the new
//! file, whole. A write that fails (a full disk) removes what it had written, so nothing
//! half-written is left beside the target either.
//!
//! Every operation runs on tokio's blocking pool: an fsync on a busy disk can take seconds, and
//! the runtime thread must keep watching the VIP and running hooks meanwhile.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// A file operation that failed: what was being done (with the path) and the system's error.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action}: {source}")]
pub struct FileError {
    /// What was being done, with the path (`write /etc/haproxy.cfg.tmp`).
    pub action: String,
    /// The system's error.
    pub source: io::Error,
}

fn failed(action: String) -> impl FnOnce(io::Error) -> FileError {
    move |source| FileError { action, source }
}

/// `path` with `suffix` appended to its file name (`haproxy.cfg` → `haproxy.cfg.tmp`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates the file's directory if need be, writes `text` to `path` and fsyncs it; on failure
/// the partly written file is removed.
pub async fn write(path: &Path, text: &str) -> Result<(), FileError> {
    let (path, text) = (path.to_path_buf(), text.to_string());
    blocking(move || write_synced(&path, &text)).await
}

/// [`write`] without the fsync, for a file that is read (checked) before it is kept: [`sync`] it
/// before renaming it into place.
pub async fn write_unsynced(path: &Path, text: &str) -> Result<(), FileError> {
    let (path, text) = (path.to_path_buf(), text.to_string());
    blocking(move || write_file(&path, &text, false)).await
}

/// Fsyncs the file at `path` (written with [`write_unsynced`]).
pub async fn sync(path: &Path) -> Result<(), FileError> {
    let path = path.to_path_buf();
    blocking(move || {
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(failed(format!("sync {}", path.display())))
    })
    .await
}

/// Renames `from` over `to` and fsyncs the directory, so the rename survives a crash.
pub async fn rename(from: &Path, to: &Path) -> Result<(), FileError> {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    blocking(move || rename_synced(&from, &to)).await
}

/// Renames `from` over `to` without the directory's fsync: the rename is seen at once, and
/// [`sync_dir_of`] makes it survive a crash (done while the new file is put in service).
pub async fn rename_unsynced(from: &Path, to: &Path) -> Result<(), FileError> {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    blocking(move || {
        fs::rename(&from, &to).map_err(failed(format!(
            "rename {} to {}",
            from.display(),
            to.display()
        )))
    })
    .await
}

/// Fsyncs the directory that holds `path`, so a rename into it survives a crash.
pub async fn sync_dir_of(path: &Path) -> Result<(), FileError> {
    let path = path.to_path_buf();
    blocking(move || sync_dir(&path)).await
}

/// Replaces `path` with `text`: written beside it as `<path>.tmp`, then renamed over it.
pub async fn replace(path: &Path, text: &str) -> Result<(), FileError> {
    let (path, text) = (path.to_path_buf(), text.to_string());
    blocking(move || replace_synced(&path, &text, None)).await
}

/// [`replace`], the new file with permission bits `mode` (a script to run).
pub async fn replace_with_mode(path: &Path, text: &str, mode: u32) -> Result<(), FileError> {
    let (path, text) = (path.to_path_buf(), text.to_string());
    blocking(move || replace_synced(&path, &text, Some(mode))).await
}

/// The contents of `path`, or `None` if there is no such file.
pub async fn read_optional(path: &Path) -> Result<Option<String>, FileError> {
    let path = path.to_path_buf();
    blocking(move || match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(failed(format!("read {}", path.display()))(e)),
    })
    .await
}

/// Removes `path`; a missing file is fine.
pub async fn remove(path: &Path) -> Result<(), FileError> {
    let path = path.to_path_buf();
    blocking(move || remove_optional(&path)).await
}

/// Creates `dir` and its parents if missing.
pub async fn ensure_dir(dir: &Path) -> Result<(), FileError> {
    let dir = dir.to_path_buf();
    blocking(move || {
        fs::create_dir_all(&dir).map_err(failed(format!("create directory {}", dir.display())))
    })
    .await
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FileError> + Send + 'static,
) -> Result<T, FileError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| FileError {
            action: "finish a file operation".to_string(),
            source: io::Error::other(e),
        })?
}

fn write_synced(path: &Path, text: &str) -> Result<(), FileError> {
    write_file(path, text, true)
}

fn write_file(path: &Path, text: &str, synced: bool) -> Result<(), FileError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(failed(format!("create directory {}", dir.display())))?;
    }
    let write = || -> io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(text.as_bytes())?;
        if synced { file.sync_all() } else { Ok(()) }
    };
    write().map_err(|e| {
        let _ = fs::remove_file(path);
        failed(format!("write {}", path.display()))(e)
    })
}

fn replace_synced(path: &Path, text: &str, mode: Option<u32>) -> Result<(), FileError> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = with_suffix(path, ".tmp");
    write_synced(&tmp, text)?;
    let chmod = |mode| {
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
            .map_err(failed(format!("set the mode of {}", tmp.display())))
    };
    mode.map_or(Ok(()), chmod)
        .and_then(|()| rename_synced(&tmp, path))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
}

fn rename_synced(from: &Path, to: &Path) -> Result<(), FileError> {
    let action = || format!("rename {} to {}", from.display(), to.display());
    fs::rename(from, to).map_err(failed(action()))?;
    sync_dir(to)
}

fn sync_dir(path: &Path) -> Result<(), FileError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(failed(format!("sync directory {}", dir.display())))
}

fn remove_optional(path: &Path) -> Result<(), FileError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(failed(format!("remove {}", path.display()))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_appended_to_the_file_name() {
        assert_eq!(
            with_suffix(Path::new("/etc/haproxy.cfg"), "-failed"),
            PathBuf::from("/etc/haproxy.cfg-failed")
        );
    }

    #[tokio::test]
    async fn replace_writes_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("bgpd.conf");
        assert_eq!(read_optional(&path).await.expect("read"), None);
        replace(&path, "one\n").await.expect("first");
        replace(&path, "two\n").await.expect("second");
        assert_eq!(
            read_optional(&path).await.expect("read").as_deref(),
            Some("two\n")
        );
        assert!(!with_suffix(&path, ".tmp").exists());
        remove(&path).await.expect("remove");
        remove(&path).await.expect("remove again");
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the file should go: creating it fails after nothing was written,
        // and a file whose write fails is removed too (see the full-disk end-to-end tests).
        let path = dir.path().join("taken");
        fs::create_dir(&path).expect("mkdir");
        let err = write(&path, "text")
            .await
            .expect_err("a directory is in the way");
        assert!(err.to_string().starts_with("cannot write "), "{err}");
        let err = replace(&path, "text")
            .await
            .expect_err("rename over a directory");
        assert!(err.to_string().contains("rename"), "{err}");
        assert!(!with_suffix(&path, ".tmp").exists());
    }
}
