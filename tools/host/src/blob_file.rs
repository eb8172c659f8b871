//! Reading a blob from disk into memory aligned for zero-copy parsing: mapped, not copied.

use alexnet_core::Model;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// A blob's bytes in storage [`Model::parse`] can view its tensors in place from: a
/// read-only memory map of the file (page-aligned, so every alignment the format asks for),
/// or 8-byte-aligned words for bytes made in memory (a plain `Vec<u8>` promises no
/// alignment).
pub struct BlobFile {
    storage: Storage,
    len: usize,
    path: PathBuf,
}

enum Storage {
    Mapped(memmap2::Mmap),
    Words(Vec<u64>),
}

impl BlobFile {
    /// Maps `path` read-only: the blob's pages are read as the parser and the kernels touch
    /// them, and the process holds them once (a 244 MB blob is no longer read and then
    /// copied into aligned memory). Files that cannot be mapped (pipes, some special files)
    /// are read instead.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot read model blob {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot read model blob {}", path.display()))?
            .len();
        if len > 0 {
            // SAFETY: the map is read-only and lives as long as `self`. Its contents are those
            // of the file, which must not change while it is mapped (a truncation raises
            // SIGBUS, a write changes the bytes under the parser), as for every memory-mapped
            // reader (safetensors, NumPy's memmap). This project's tools never write a blob in
            // place: they write a temporary file and rename it over the old name, which leaves
            // a mapping of the old file intact. The parser validates the bytes (CRC-32) before
            // any tensor is viewed.
            if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
                return Ok(BlobFile {
                    len: map.len(),
                    storage: Storage::Mapped(map),
                    path: path.to_path_buf(),
                });
            }
        }
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read model blob {}", path.display()))?;
        Ok(Self::from_bytes(&bytes, path))
    }

    /// Copies `bytes` into aligned storage; `origin` names them in errors.
    pub fn from_bytes(bytes: &[u8], origin: impl AsRef<Path>) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        BlobFile {
            storage: Storage::Words(words),
            len: bytes.len(),
            path: origin.as_ref().to_path_buf(),
        }
    }

    /// Whether the bytes are the file's pages, mapped (else a copy in memory).
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Mapped(map) => map,
            Storage::Words(words) => &bytemuck::cast_slice::<u64, u8>(words)[..self.len],
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_on_disk_is_mapped_and_parses_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let spec = crate::init::paper_init(&alexnet_core::builtin::MICRO, 1).unwrap();
        let bytes = spec.to_blob().unwrap();
        let path = dir.path().join("micro.blob");
        std::fs::write(&path, &bytes).unwrap();
        let file = BlobFile::read(&path).unwrap();
        assert!(file.is_mapped());
        assert_eq!(file.bytes(), &bytes[..]);
        assert_eq!(
            file.bytes().as_ptr() as usize % 4096,
            0,
            "a mapping starts on a page"
        );
        let model = file.model().unwrap();
        assert_eq!(crate::ModelSpec::from_model(&model), spec);

        // An empty file cannot be mapped: read, and refused by the parser with its name.
        let empty = dir.path().join("empty.blob");
        std::fs::write(&empty, b"").unwrap();
        let file = BlobFile::read(&empty).unwrap();
        assert!(!file.is_mapped());
        let err = format!("{:#}", file.model().unwrap_err());
        assert!(err.contains("empty.blob"), "{err}");
    }
}
