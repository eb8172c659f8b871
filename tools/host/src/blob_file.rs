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
