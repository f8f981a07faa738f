//! The announcer's files, written crash-safely and off the runtime's one thread (an fsync on a
//! busy disk must not hold up the VIP watcher or the hooks): a new file is written and fsynced
//! beside its target, then renamed over it and the directory fsynced, so the target is always
//! either the old or the new file, whole.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use log::debug;

use super::error::BgpError;

/// `path` with `suffix` appended to its file name (`bgpd.conf` → `bgpd.conf.tmp`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates the directory if need be, writes `text` to `path` and fsyncs it.
pub async fn write(path: &Path, text: &str) -> Result<(), BgpError> {
    let (path, text) = (path.to_path_buf(), text.to_string());
    blocking(move || write_synced(&path, &text)).await
}

/// Renames `from` over `to` and fsyncs the directory, so the rename survives a crash.
pub async fn rename(from: &Path, to: &Path) -> Result<(), BgpError> {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    blocking(move || rename_synced(&from, &to)).await
}

/// Replaces `path` with `text`: written beside it as `<path>.tmp`, then renamed over it.
pub async fn replace(path: &Path, text: &str) -> Result<(), BgpError> {
    let tmp = with_suffix(path, ".tmp");
    write(&tmp, text).await?;
    rename(&tmp, path).await
}

/// Removes the temporary file `tmp` after `error`, which is returned.
pub async fn discard(tmp: &Path, error: BgpError) -> BgpError {
    if let Err(e) = tokio::fs::remove_file(tmp).await {
        debug!("cannot remove {} error=\"{e}\"", tmp.display());
    }
    error
}

async fn blocking(
    work: impl FnOnce() -> Result<(), BgpError> + Send + 'static,
) -> Result<(), BgpError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BgpError::Io {
            action: "finish a file operation".to_string(),
            source: std::io::Error::other(e),
        })?
}

fn write_synced(path: &Path, text: &str) -> Result<(), BgpError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .map_err(BgpError::io(format!("create directory {}", dir.display())))?;
    }
    let write = || -> std::io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    write().map_err(BgpError::io(format!("write {}", path.display())))
}

fn rename_synced(from: &Path, to: &Path) -> Result<(), BgpError> {
    let action = || format!("rename {} to {}", from.display(), to.display());
    fs::rename(from, to).map_err(BgpError::io(action()))?;
    let dir = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(BgpError::io(action()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replace_writes_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("bgpd.conf");
        replace(&path, "one\n").await.expect("first");
        replace(&path, "two\n").await.expect("second");
        assert_eq!(fs::read_to_string(&path).expect("read"), "two\n");
        assert!(!with_suffix(&path, ".tmp").exists());
    }
}
