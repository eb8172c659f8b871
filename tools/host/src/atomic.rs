//! Crash-safe file writes: a file appears under its final name complete or not at all.
//!
//! Everything is written to a temporary file in the destination's folder (a rename is atomic
//! only within one file system), synced to disk, renamed over the destination, and the
//! folder synced so the rename itself survives a power cut. The temporary name carries the
//! process id and a per-process counter, so two writers, in one process or several, never
//! share a temporary file even when they write the same destination: the last rename wins
//! and each destination is always one writer's complete file.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Suffix of every temporary file, so leftovers of a killed process are recognizable.
pub const TMP_SUFFIX: &str = ".tmp";

/// Writes `bytes` to `path` atomically (creating its folder if needed).
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)
        .with_context(|| file.write_error_context())?;
    file.commit()
}

/// A file being written atomically: [`AtomicFile::commit`] moves it into place; dropping it
/// uncommitted deletes it, so an error or a panic halfway leaves nothing behind.
pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    path: PathBuf,
}

impl AtomicFile {
    /// Starts writing `path`: creates its folder and a fresh temporary file beside it.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let dir = parent_dir(path);
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let name = path
            .file_name()
            .with_context(|| format!("{} has no file name", path.display()))?;
        // `create_new`, retried under the next name: a leftover of a killed process whose id
        // was recycled is never written into.
        let (file, tmp) = loop {
            let tmp = dir.join(format!(
                ".{}.{}.{}{TMP_SUFFIX}",
                name.to_string_lossy(),
                std::process::id(),
                next_serial()
            ));
            match File::options().write(true).create_new(true).open(&tmp) {
                Ok(file) => break (file, tmp),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", tmp.display()))
                }
            }
        };
        Ok(AtomicFile {
            file: Some(file),
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Where the bytes go once committed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file being written (for error messages).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Syncs the data, renames the temporary file over [`AtomicFile::path`] and syncs the
    /// folder.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().context("atomic file already committed")?;
        let moved = file
            .sync_all()
            .with_context(|| self.write_error_context())
            .and_then(|()| {
                drop(file);
                std::fs::rename(&self.tmp, &self.path).with_context(|| {
                    format!(
                        "cannot rename {} to {}",
                        self.tmp.display(),
                        self.path.display()
                    )
                })
            });
        if moved.is_err() {
            // `Drop` no longer sees an open file, so the leftover is removed here.
            let _ = std::fs::remove_file(&self.tmp);
        }
        moved?;
        sync_dir(parent_dir(&self.path))
    }

    /// The context of a failed write: names the destination and the likely cause.
    fn write_error_context(&self) -> String {
        format!("cannot write {} (disk full?)", self.path.display())
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("atomic file already committed"))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file()?.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file()?.flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.file()?.seek(pos)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Syncs a file already written (by a library that does not sync, such as tch's
/// safetensors writer) to disk.
pub fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot fsync {}", path.display()))
}

/// Syncs a folder, making renames and new entries in it durable. Folders can be synced on
/// Unix; elsewhere opening works but syncing may not, so only opening is an error.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    let _ = d.sync_all();
    Ok(())
}

/// The folder holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn next_serial() -> u64 {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_and_replaces_leaving_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.bin");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(entries(&dir.path().join("sub")), ["out.bin"]);
    }

    #[test]
    fn an_uncommitted_file_vanishes_and_the_old_one_survives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        write_atomic(&path, b"old").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"half-writ").unwrap();
        assert!(f.tmp_path().exists());
        assert_eq!(f.tmp_path().parent(), Some(dir.path()));
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(entries(dir.path()), ["out.bin"]);
    }

    #[test]
    fn seeking_back_patches_a_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"....body").unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(b"HEAD").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"HEADbody");
    }

    #[test]
    fn concurrent_writers_of_one_destination_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.bin");
        // Each writer's content is long and uniform, so a mix of two would show.
        let contents: Vec<Vec<u8>> = (0u8..8).map(|i| vec![b'a' + i; 1 << 16]).collect();
        std::thread::scope(|s| {
            for c in &contents {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..10 {
                        write_atomic(path, c).unwrap();
                    }
                });
            }
        });
        let last = std::fs::read(&path).unwrap();
        assert!(contents.contains(&last), "a mix of writers' bytes");
        assert_eq!(entries(dir.path()), ["shared.bin"]);
    }

    #[test]
    fn temporary_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let a = AtomicFile::create(&path).unwrap();
        let b = AtomicFile::create(&path).unwrap();
        assert_ne!(a.tmp_path(), b.tmp_path());
        let name = a.tmp_path().file_name().unwrap().to_string_lossy();
        assert!(
            name.starts_with(".x.") && name.ends_with(TMP_SUFFIX),
            "{name}"
        );
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty folder under the destination's name: the rename must fail.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        let e = write_atomic(&path, b"new").unwrap_err().to_string();
        assert!(e.contains("cannot rename"), "{e}");
        assert_eq!(entries(dir.path()), ["taken"]);
    }

    #[test]
    fn a_missing_file_name_is_an_error() {
        let e = write_atomic("/", b"x").unwrap_err().to_string();
        assert!(e.contains("has no file name"), "{e}");
    }
}
