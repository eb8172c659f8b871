//! The compact preprocessed-image cache: decoding and resizing JPEGs is the expensive part
//! of the pipeline, so it is done once and the `S x S` bytes are kept on disk.
//!
//! Layout (little-endian): magic `ALXIMGS\0`, version u32, channels u32, size u32,
//! count u64, fingerprint u64, class count u32, then per class a u32 byte length and its
//! UTF-8 name, then `count` u32 labels, then `count * channels * size * size` pixel bytes
//! (the [`ImageSet`] buffer as is). The file length must match the header exactly, so a
//! truncated or padded file is refused before anything large is allocated.

use super::ImageSet;
use anyhow::{bail, ensure, Context, Result};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"ALXIMGS\0";
const VERSION: u32 = 1;
/// Longest class name accepted, a sanity bound against corrupt headers.
const MAX_NAME: usize = 4096;
/// Most classes accepted, likewise.
const MAX_CLASSES: usize = 1 << 20;

/// Writes `set` and the `fingerprint` of its source to `path`, atomically: a temporary file
/// in the same folder, flushed to disk, then renamed over `path`, so a crash never leaves a
/// half-written cache behind.
pub fn save(set: &ImageSet, fingerprint: u64, path: &Path) -> Result<()> {
    set.validate()
        .context("refusing to cache an inconsistent image set")?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("cache path {} has no file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_file(set, fingerprint, &tmp).and_then(|()| {
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else if let Ok(d) = File::open(&dir) {
        // Makes the rename itself durable; not every platform allows syncing a folder.
        let _ = d.sync_all();
    }
    result
}

fn write_file(set: &ImageSet, fingerprint: u64, path: &Path) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut header = Vec::new();
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&u32::try_from(set.channels)?.to_le_bytes());
    header.extend_from_slice(&u32::try_from(set.size)?.to_le_bytes());
    header.extend_from_slice(&(set.len() as u64).to_le_bytes());
    header.extend_from_slice(&fingerprint.to_le_bytes());
    header.extend_from_slice(&u32::try_from(set.classes.len())?.to_le_bytes());
    for c in &set.classes {
        ensure!(
            c.len() <= MAX_NAME,
            "class name longer than {MAX_NAME} bytes"
        );
        header.extend_from_slice(&(c.len() as u32).to_le_bytes());
        header.extend_from_slice(c.as_bytes());
    }
    for &l in &set.labels {
        header.extend_from_slice(&l.to_le_bytes());
    }
    let write = |w: &mut BufWriter<File>| -> std::io::Result<()> {
        w.write_all(&header)?;
        w.write_all(&set.pixels)?;
        w.flush()?;
        w.get_ref().sync_all()
    };
    write(&mut w).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a fixed number of bytes of the header, naming the field on truncation.
fn take<const N: usize>(r: &mut impl Read, what: &str, path: &Path) -> Result<[u8; N]> {
    let mut b = [0u8; N];
    r.read_exact(&mut b)
        .with_context(|| format!("{} is truncated (in the {what})", path.display()))?;
    Ok(b)
}

/// Reads a cache written by [`save`]; returns the set and the fingerprint stored with it.
/// Every field is checked (magic, version, sizes, labels, exact file length).
pub fn load(path: &Path) -> Result<(ImageSet, u64)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let file_len = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let magic: [u8; 8] = take(&mut r, "magic", path)?;
    ensure!(
        &magic == MAGIC,
        "{} is not an image cache (bad magic)",
        path.display()
    );
    let version = u32::from_le_bytes(take(&mut r, "version", path)?);
    ensure!(
        version == VERSION,
        "{} is a version {version} image cache, this build reads version {VERSION}",
        path.display()
    );
    let channels = u32::from_le_bytes(take(&mut r, "header", path)?) as usize;
    let size = u32::from_le_bytes(take(&mut r, "header", path)?) as usize;
    let count = u64::from_le_bytes(take(&mut r, "header", path)?);
    let fingerprint = u64::from_le_bytes(take(&mut r, "header", path)?);
    let n_classes = u32::from_le_bytes(take(&mut r, "header", path)?) as usize;
    ensure!(
        (1..=4).contains(&channels) && size > 0 && n_classes <= MAX_CLASSES,
        "{}: implausible header (channels {channels}, size {size}, {n_classes} classes)",
        path.display()
    );
    let mut consumed: u64 = 8 + 4 * 4 + 8 * 2;
    let mut classes = Vec::with_capacity(n_classes.min(1024));
    for i in 0..n_classes {
        let len = u32::from_le_bytes(take(&mut r, "class names", path)?) as usize;
        ensure!(
            len <= MAX_NAME,
            "{}: class name {i} is {len} bytes long, corrupt header",
            path.display()
        );
        let mut name = vec![0u8; len];
        r.read_exact(&mut name)
            .with_context(|| format!("{} is truncated (in the class names)", path.display()))?;
        let name = String::from_utf8(name)
            .with_context(|| format!("{}: class name {i} is not UTF-8", path.display()))?;
        classes.push(name);
        consumed += 4 + len as u64;
    }
    let image_len = (channels * size * size) as u64;
    let expected = count
        .checked_mul(4 + image_len)
        .and_then(|body| body.checked_add(consumed))
        .with_context(|| format!("{}: absurd image count {count}", path.display()))?;
    if file_len != expected {
        bail!(
            "{} is {} bytes, its header announces {count} images of {channels}x{size}x{size} \
             = {expected} bytes ({})",
            path.display(),
            file_len,
            if file_len < expected {
                "truncated"
            } else {
                "trailing data"
            }
        );
    }
    let count = usize::try_from(count)?;
    let mut raw = vec![0u8; count * 4];
    r.read_exact(&mut raw)
        .with_context(|| format!("{} is truncated (in the labels)", path.display()))?;
    let labels: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    drop(raw);
    let mut pixels = vec![0u8; count * image_len as usize];
    r.read_exact(&mut pixels)
        .with_context(|| format!("{} is truncated (in the pixels)", path.display()))?;
    let set = ImageSet {
        channels,
        size,
        pixels,
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
        for cut in [0, 5, 20, 40, 50, bytes.len() - 1] {
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
        label[40 + names_len] = 200;
        std::fs::write(&bad, &label).unwrap();
        let err = format!("{:#}", load(&bad).unwrap_err());
        assert!(err.contains("label 200"), "{err}");
        assert!(load(&dir.path().join("absent")).is_err());
    }
}
