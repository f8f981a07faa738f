//! The files the driver owns, written crash-safely: a new file is written and fsynced beside its
//! target, then renamed over it and the directory fsynced, so the target is always either the
//! old or the new file, whole.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::HaproxyError;

/// `path` with `suffix` appended to its file name (`haproxy.cfg` → `haproxy.cfg.tmp`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates `dir` and its parents if missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), HaproxyError> {
    fs::create_dir_all(dir).map_err(HaproxyError::io(format!(
        "create directory {}",
        dir.display()
    )))
}

/// The contents of `path`, or `None` if there is no such file.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, HaproxyError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HaproxyError::Io {
            action: format!("read {}", path.display()),
            source,
        }),
    }
}

/// Writes `text` to `path` and fsyncs it.
pub(crate) fn write_synced(path: &Path, text: &str) -> Result<(), HaproxyError> {
    let write = || -> io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    write().map_err(HaproxyError::io(format!("write {}", path.display())))
}

/// Renames `from` over `to` and fsyncs the directory, so the rename survives a crash.
pub(crate) fn rename_synced(from: &Path, to: &Path) -> Result<(), HaproxyError> {
    let action = || format!("rename {} to {}", from.display(), to.display());
    fs::rename(from, to).map_err(HaproxyError::io(action()))?;
    sync_parent(to).map_err(HaproxyError::io(action()))
}

/// Replaces `path` with `text`: write beside it, fsync, rename over it.
pub(crate) fn replace(path: &Path, text: &str) -> Result<(), HaproxyError> {
    let tmp = with_suffix(path, ".tmp");
    write_synced(&tmp, text)?;
    rename_synced(&tmp, path)
}

/// Removes `path`; a missing file is fine.
pub(crate) fn remove_optional(path: &Path) -> Result<(), HaproxyError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(HaproxyError::Io {
            action: format!("remove {}", path.display()),
            source,
        }),
    }
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
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

    #[test]
    fn replace_writes_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("haproxy.cfg");
        assert_eq!(read_optional(&path).expect("read"), None);
        replace(&path, "one").expect("first");
        replace(&path, "two").expect("second");
        assert_eq!(read_optional(&path).expect("read").as_deref(), Some("two"));
        assert!(!with_suffix(&path, ".tmp").exists());
        remove_optional(&path).expect("remove");
        remove_optional(&path).expect("remove again");
        assert!(!path.exists());
    }
}
