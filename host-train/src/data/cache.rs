//! The compact preprocessed-image cache: decoding and resizing JPEGs is the expensive part
//! of the pipeline, so it is done once and the `S x S` bytes are kept on disk. The cache is
//! written image by image as they are decoded and read back as a memory map, so a set larger
//! than memory (ImageNet: 252 GB at 256x256) trains from it.
//!
//! Layout (little-endian): a 64-byte header: magic `ALXIMGS\0`, version u32, channels u32,
//! size u32, reserved u32, count u64, fingerprint u64, trailer offset u64, zeros; then
//! `count * channels * size * size` pixel bytes (the [`ImageSet`] buffer as is, 64-byte
//! aligned); then the trailer: class count u32, per class a u32 byte length and its UTF-8
//! name, and `count` u32 labels. The file length must match exactly, so a truncated or
//! padded file is refused before anything is mapped.

use super::{ImageSet, Pixels};
use alexnet_host::atomic::AtomicFile;
use anyhow::{bail, ensure, Context, Result};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"ALXIMGS\0";
const VERSION: u32 = 2;
const HEADER: usize = 64;
/// Longest class name accepted, a sanity bound against corrupt headers.
const MAX_NAME: usize = 4096;
/// Most classes accepted, likewise.
const MAX_CLASSES: usize = 1 << 20;

/// Writes a cache image by image through an [`AtomicFile`], which
/// [`CacheWriter::finish`] completes and moves into place, so a crash never leaves a
/// half-written cache behind (an unfinished writer deletes its temporary file).
pub struct CacheWriter {
    out: Option<BufWriter<AtomicFile>>,
    channels: usize,
    size: usize,
    labels: Vec<u32>,
}

impl CacheWriter {
    /// Starts a cache of `channels x size x size` images at `path`.
    pub fn create(path: &Path, channels: usize, size: usize) -> Result<Self> {
        ensure!(
            (1..=4).contains(&channels) && size > 0,
            "cannot cache {channels}-channel images of side {size}"
        );
        let file = AtomicFile::create(path).context("cannot start the image cache")?;
        let mut out = BufWriter::with_capacity(1 << 22, file);
        out.write_all(&[0u8; HEADER])
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(CacheWriter {
            out: Some(out),
            channels,
            size,
            labels: Vec::new(),
        })
    }

    /// Appends one CHW image.
    pub fn push(&mut self, pixels: &[u8], label: u32) -> Result<()> {
        let n = self.channels * self.size * self.size;
        ensure!(
            pixels.len() == n,
            "image of {} bytes, the cache holds {n}",
            pixels.len()
        );
        let out = self.out.as_mut().context("cache writer already finished")?;
        out.write_all(pixels)
            .with_context(|| format!("cannot write {}", out.get_ref().path().display()))?;
        self.labels.push(label);
        Ok(())
    }

    /// Images written so far.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether no image was written.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Writes the trailer and the header, and commits the file.
    pub fn finish(mut self, classes: &[String], fingerprint: u64) -> Result<()> {
        ensure!(classes.len() <= MAX_CLASSES, "too many classes");
        if let Some(bad) = self.labels.iter().find(|&&l| l as usize >= classes.len()) {
            bail!(
                "label {bad} out of range: the set has {} classes",
                classes.len()
            );
        }
        let out = self.out.take().context("cache writer already finished")?;
        let count = self.labels.len() as u64;
        let trailer_at = HEADER as u64 + count * (self.channels * self.size * self.size) as u64;
        let mut trailer = Vec::new();
        trailer.extend_from_slice(&u32::try_from(classes.len())?.to_le_bytes());
        for c in classes {
            ensure!(
                c.len() <= MAX_NAME,
                "class name longer than {MAX_NAME} bytes"
            );
            trailer.extend_from_slice(&(c.len() as u32).to_le_bytes());
            trailer.extend_from_slice(c.as_bytes());
        }
        for &l in &self.labels {
            trailer.extend_from_slice(&l.to_le_bytes());
        }
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&u32::try_from(self.channels)?.to_le_bytes());
        header.extend_from_slice(&u32::try_from(self.size)?.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&count.to_le_bytes());
        header.extend_from_slice(&fingerprint.to_le_bytes());
        header.extend_from_slice(&trailer_at.to_le_bytes());
        header.resize(HEADER, 0);
        let path = out.get_ref().path().to_path_buf();
        let complete = |mut out: BufWriter<AtomicFile>| -> std::io::Result<AtomicFile> {
            out.write_all(&trailer)?;
            let mut file = out.into_inner().map_err(|e| e.into_error())?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&header)?;
            Ok(file)
        };
        complete(out)
            .with_context(|| format!("cannot write {} (disk full?)", path.display()))?
            .commit()
    }
}

/// Writes `set` and the `fingerprint` of its source to `path`, atomically.
pub fn save(set: &ImageSet, fingerprint: u64, path: &Path) -> Result<()> {
    set.validate()
        .context("refusing to cache an inconsistent image set")?;
    let mut w = CacheWriter::create(path, set.channels, set.size)?;
    for i in 0..set.len() {
        let img = set.image(i).context("image out of range")?;
        w.push(img, set.labels[i])?;
    }
    w.finish(&set.classes, fingerprint)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Maps a cache written by [`save`] or [`CacheWriter`]; returns the set (its pixels mapped,
/// not read) and the fingerprint stored with it. Every field is checked (magic, version,
/// sizes, labels, exact file length).
pub fn load(path: &Path) -> Result<(ImageSet, u64)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let file_len = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    ensure!(
        file_len >= HEADER as u64,
        "{} is truncated (in the header)",
        path.display()
    );
    // SAFETY: the map is read-only; the cache is written to a temporary file and renamed,
    // never modified in place, so the mapped file does not change under us (unless someone
    // edits it by hand, which could change the bytes read but not memory safety of the
    // slices handed out, as the map's length is fixed).
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("cannot map {}", path.display()))?;
    let b = &map[..];
    ensure!(
        &b[..8] == MAGIC,
        "{} is not an image cache (bad magic)",
        path.display()
    );
    let field = |v: Option<u32>| {
        v.with_context(|| format!("{} is truncated (in the header)", path.display()))
    };
    let version = field(u32_at(b, 8))?;
    ensure!(
        version == VERSION,
        "{} is a version {version} image cache, this build reads version {VERSION}",
        path.display()
    );
    let channels = field(u32_at(b, 12))? as usize;
    let size = field(u32_at(b, 16))? as usize;
    let count = u64_at(b, 24).context("header")?;
    let fingerprint = u64_at(b, 32).context("header")?;
    let trailer_at = u64_at(b, 40).context("header")?;
    ensure!(
        (1..=4).contains(&channels) && size > 0 && size <= 1 << 16,
        "{}: implausible header (channels {channels}, size {size})",
        path.display()
    );
    let image_len = (channels * size * size) as u64;
    let expected_trailer = count
        .checked_mul(image_len)
        .and_then(|p| p.checked_add(HEADER as u64))
        .with_context(|| format!("{}: absurd image count {count}", path.display()))?;
    ensure!(
        trailer_at == expected_trailer,
        "{}: the header's trailer offset {trailer_at} does not follow {count} images",
        path.display()
    );
    ensure!(
        file_len >= trailer_at,
        "{} is truncated (in the pixels)",
        path.display()
    );
    let trailer = &b[trailer_at as usize..];
    let truncated = || {
        format!(
            "{} is truncated (in the class names or labels)",
            path.display()
        )
    };
    let n_classes = u32_at(trailer, 0).with_context(truncated)? as usize;
    ensure!(
        n_classes <= MAX_CLASSES,
        "{}: implausible header ({n_classes} classes)",
        path.display()
    );
    let mut at = 4;
    let mut classes = Vec::with_capacity(n_classes.min(1024));
    for i in 0..n_classes {
        let len = u32_at(trailer, at).with_context(truncated)? as usize;
        ensure!(
            len <= MAX_NAME,
            "{}: class name {i} is {len} bytes long, corrupt header",
            path.display()
        );
        let name = trailer.get(at + 4..at + 4 + len).with_context(truncated)?;
        let name = String::from_utf8(name.to_vec())
            .with_context(|| format!("{}: class name {i} is not UTF-8", path.display()))?;
        classes.push(name);
        at += 4 + len;
    }
    let labels_len = usize::try_from(count)?
        .checked_mul(4)
        .with_context(|| format!("{}: absurd image count {count}", path.display()))?;
    let raw = trailer.get(at..at + labels_len).with_context(truncated)?;
    if trailer.len() != at + labels_len {
        bail!("{} has trailing data after its labels", path.display());
    }
    let labels: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let len = (trailer_at as usize) - HEADER;
    let set = ImageSet {
        channels,
        size,
        pixels: Pixels::Mapped {
            map: Arc::new(map),
            start: HEADER,
            len,
        },
        labels,
        classes,
    };
    set.validate()
        .with_context(|| format!("{} is corrupt", path.display()))?;
    Ok((set, fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::pattern_set;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/train.cache");
        let mut set = pattern_set(4, 3, 5);
        set.classes[1] = "Ünïcode class".into();
        save(&set, 0xdead_beef_1234, &path).unwrap();
        let (back, fp) = load(&path).unwrap();
        assert_eq!(fp, 0xdead_beef_1234);
        assert_eq!(
            (
                back.channels,
                back.size,
                &back.labels,
                &back.classes,
                &back.pixels
            ),
            (
                set.channels,
                set.size,
                &set.labels,
                &set.classes,
                &set.pixels
            )
        );
        // No temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");

        let bytes = std::fs::read(&path).unwrap();
        let bad = dir.path().join("bad.cache");
        // Truncated anywhere: header, names, labels, pixels.
        for cut in [0, 5, 20, 40, 50, 64 + 10, bytes.len() - 1] {
            std::fs::write(&bad, &bytes[..cut]).unwrap();
            let err = format!("{:#}", load(&bad).unwrap_err());
            assert!(err.contains("truncated"), "cut {cut}: {err}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        std::fs::write(&bad, &padded).unwrap();
        assert!(load(&bad).unwrap_err().to_string().contains("trailing"));
        let mut magic = bytes.clone();
        magic[0] = b'X';
        std::fs::write(&bad, &magic).unwrap();
        assert!(load(&bad).unwrap_err().to_string().contains("bad magic"));
        let mut version = bytes.clone();
        version[8] = 9;
        std::fs::write(&bad, &version).unwrap();
        assert!(load(&bad).unwrap_err().to_string().contains("version 9"));
        let mut count = bytes.clone();
        count[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(&bad, &count).unwrap();
        assert!(load(&bad).is_err());
        // A label out of range (first label sits right after the class names).
        let mut label = bytes.clone();
        let names_len: usize = set.classes.iter().map(|c| 4 + c.len()).sum();
        label[64 + set.pixels.len() + 4 + names_len] = 200;
        std::fs::write(&bad, &label).unwrap();
        let err = format!("{:#}", load(&bad).unwrap_err());
        assert!(err.contains("label 200"), "{err}");
        assert!(load(&dir.path().join("absent")).is_err());
        // An unfinished writer leaves nothing behind.
        let mut w = CacheWriter::create(&dir.path().join("never.cache"), 3, 5).unwrap();
        w.push(set.image(0).unwrap(), 0).unwrap();
        assert!(w.push(&[0; 3], 0).is_err());
        drop(w);
        assert!(!dir.path().join("never.cache").exists());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("never"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
