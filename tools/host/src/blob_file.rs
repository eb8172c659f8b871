//! Reading a blob from disk into memory aligned for zero-copy parsing.

use alexnet_core::Model;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// A blob's bytes, held in 8-byte-aligned storage so [`Model::parse`] can view its tensors
/// in place (a plain `Vec<u8>` promises no alignment).
pub struct BlobFile {
    words: Vec<u64>,
    len: usize,
    path: PathBuf,
}

impl BlobFile {
    /// Reads `path`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read model blob {}", path.display()))?;
        Ok(Self::from_bytes(&bytes, path))
    }

    /// Copies `bytes` into aligned storage; `origin` names them in errors.
    pub fn from_bytes(bytes: &[u8], origin: impl AsRef<Path>) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        BlobFile {
            words,
            len: bytes.len(),
            path: origin.as_ref().to_path_buf(),
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[..self.len]
    }

    /// Parses and validates the blob; the error names the file.
    pub fn model(&self) -> Result<Model<'_>> {
        Model::parse(self.bytes())
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("invalid model blob {}", self.path.display()))
    }

    /// Where the blob came from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes a blob file atomically: a temporary file beside it, then a rename, so an
/// interrupted write never leaves a half-written blob under the final name.
pub fn write_blob(path: impl AsRef<Path>, blob: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file_name = path.file_name().context("output path has no file name")?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(blob)?;
            f.sync_all()
        })
        .with_context(|| format!("cannot write {} (disk full?)", path.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
        });
    if written.is_err() {
        // Nothing half-written stays behind, under either name.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
