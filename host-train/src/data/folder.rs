//! ImageNet-style image folders (`train/<class>/*.jpg|png`, `val/<class>/...`) and the
//! paper's one-time preprocessing: every image to `size x size` (shorter side to `size`,
//! centre crop), decoded in parallel into one [`ImageSet`] that is cached on disk.
//!
//! Real folders hold odd files. Greyscale, 16-bit, CMYK, alpha and small images are
//! converted; unreadable ones (truncated, empty, not an image) are skipped; both are
//! counted in a [`PrepReport`]. Folder problems that would waste a long run (a missing
//! folder, an empty class, val classes the train set lacks) are errors raised before any
//! decoding starts.

use super::resize::{self, Kernel};
use super::{cache, ImageSet};
use anyhow::{bail, ensure, Context, Result};
use image::{DynamicImage, ImageDecoder, ImageReader};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The classes (sub-folder names, sorted) and image files (sorted, with their label) of a
/// folder.
#[derive(Clone, Debug)]
pub struct FolderScan {
    /// Class names; labels index into this.
    pub classes: Vec<String>,
    /// Every image file with its label, class by class, files sorted by name.
    pub files: Vec<(PathBuf, u32)>,
}

/// File name extensions taken as images (any case).
const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The class folders of `dir` (sorted by name, hidden ones ignored) with their images.
fn class_folders(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>> {
    ensure!(
        dir.exists(),
        "image folder {} does not exist",
        dir.display()
    );
    ensure!(dir.is_dir(), "{} is not a folder", dir.display());
    let mut classes = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !path.is_dir() {
            continue;
        }
        classes.push((name, path));
    }
    ensure!(
        !classes.is_empty(),
        "{} has no class folders (expected {}/<class>/*.jpg|png)",
        dir.display(),
        dir.display()
    );
    classes.sort();
    let mut out = Vec::with_capacity(classes.len());
    let mut empty = Vec::new();
    for (name, path) in classes {
        let mut files = Vec::new();
        let entries =
            std::fs::read_dir(&path).with_context(|| format!("cannot list {}", path.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", path.display()))?;
            let file = entry.path();
            if is_image_name(&file) && file.is_file() {
                files.push(file);
            }
        }
        if files.is_empty() {
            empty.push(name.clone());
        }
        files.sort();
        out.push((name, files));
    }
    if !empty.is_empty() {
        bail!(
            "{}: class folder(s) with no .jpg/.jpeg/.png images: {}",
            dir.display(),
            empty.join(", ")
        );
    }
    Ok(out)
}

/// Scans a training folder: classes are its sub-folders, sorted by name. Errors when the
/// folder is missing, has no class folder, or a class folder holds no image.
pub fn scan(dir: &Path) -> Result<FolderScan> {
    let folders = class_folders(dir)?;
    let mut classes = Vec::with_capacity(folders.len());
    let mut files = Vec::new();
    for (label, (name, paths)) in folders.into_iter().enumerate() {
        classes.push(name);
        files.extend(paths.into_iter().map(|p| (p, label as u32)));
    }
    Ok(FolderScan { classes, files })
}

/// Scans a validation folder against the training classes: labels are indices into
/// `train_classes` (which becomes the scan's class list). The val set may lack some train
/// classes; a val class the train set lacks is an error that lists them all.
pub fn scan_val(dir: &Path, train_classes: &[String]) -> Result<FolderScan> {
    let folders = class_folders(dir)?;
    let unknown: Vec<&str> = folders
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !train_classes.iter().any(|t| t == n))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "{}: {} validation class(es) are not in the training set: {}",
            dir.display(),
            unknown.len(),
            unknown.join(", ")
        );
    }
    let mut files = Vec::new();
    for (name, paths) in folders {
        let label = train_classes
            .iter()
            .position(|t| *t == name)
            .context("class vanished")? as u32;
        files.extend(paths.into_iter().map(|p| (p, label)));
    }
    Ok(FolderScan {
        classes: train_classes.to_vec(),
        files,
    })
}

/// What the preprocessing pass did with the odd files.
#[derive(Debug, Default)]
pub struct PrepReport {
    /// Images decoded and stored.
    pub decoded: usize,
    /// Conversions applied, by kind ("greyscale", "16-bit", "CMYK", "alpha dropped",
    /// "upscaled (smaller than 256)", "EXIF-rotated"), counted once per image and kind.
    pub converted: BTreeMap<String, usize>,
    /// Files left out, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

impl fmt::Display for PrepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} images decoded, {} skipped",
            self.decoded,
            self.skipped.len()
        )?;
        if !self.converted.is_empty() {
            let kinds: Vec<String> = self
                .converted
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            write!(f, "; converted: {}", kinds.join(", "))?;
        }
        for (path, why) in self.skipped.iter().take(5) {
            write!(f, "\n  skipped {}: {why}", path.display())?;
        }
        if self.skipped.len() > 5 {
            write!(f, "\n  ... and {} more skipped", self.skipped.len() - 5)?;
        }
        Ok(())
    }
}

/// Where the SOF header says a JPEG has 4 components (CMYK or YCCK), and whether the
/// entropy-coded data ends with an end-of-image marker after its last scan.
struct JpegFacts {
    four_components: bool,
    complete: bool,
}

/// Reads the markers of a JPEG without decoding it. Inside entropy-coded data 0xFF is
/// always followed by 0x00 or a restart marker, so SOS (FFDA) and EOI (FFD9) can be found
/// by a byte search; a truncated file has no EOI after its last scan.
fn jpeg_facts(bytes: &[u8]) -> JpegFacts {
    let mut four_components = false;
    // Walk the marker segments up to the first scan for the frame header.
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            break;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        let is_sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            if let Some(&n) = bytes.get(i + 9) {
                four_components = n == 4;
            }
            break;
        }
        if marker == 0xDA {
            break;
        }
        i += 2 + len;
    }
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let complete = match last_sos {
        Some(s) => bytes[s..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    };
    JpegFacts {
        four_components,
        complete,
    }
}

/// Decodes one file to an RGB `size x size` CHW buffer, noting the conversions; `Err` is
/// the reason to skip it.
fn decode_one(path: &Path, size: usize, notes: &mut Vec<String>) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let reader = ImageReader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    let format = reader
        .format()
        .ok_or_else(|| "not a JPEG or PNG image".to_string())?;
    if format == image::ImageFormat::Jpeg {
        let facts = jpeg_facts(&bytes);
        if !facts.complete {
            return Err("truncated JPEG (no end-of-image marker)".into());
        }
        if facts.four_components {
            notes.push("CMYK".into());
        }
    } else if format != image::ImageFormat::Png {
        return Err(format!("{format:?} is not a JPEG or PNG image"));
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("cannot decode: {e}"))?;
    let orientation = decoder.orientation().ok();
    let img = DynamicImage::from_decoder(decoder).map_err(|e| format!("cannot decode: {e}"))?;
    let mut img = match img {
        DynamicImage::ImageRgb8(_) => img,
        DynamicImage::ImageLuma8(_) => {
            notes.push("greyscale".into());
            img
        }
        DynamicImage::ImageLumaA8(_) => {
            notes.push("greyscale".into());
            notes.push("alpha dropped".into());
            img
        }
        DynamicImage::ImageRgba8(_) => {
            notes.push("alpha dropped".into());
            img
        }
        DynamicImage::ImageLuma16(_) => {
            notes.push("16-bit".into());
            notes.push("greyscale".into());
            img
        }
        DynamicImage::ImageLumaA16(_) => {
            notes.push("16-bit".into());
            notes.push("greyscale".into());
            notes.push("alpha dropped".into());
            img
        }
        DynamicImage::ImageRgb16(_) => {
            notes.push("16-bit".into());
            img
        }
        DynamicImage::ImageRgba16(_) => {
            notes.push("16-bit".into());
            notes.push("alpha dropped".into());
            img
        }
        other => {
            notes.push("float".into());
            other
        }
    };
    if let Some(o) = orientation {
        if o != image::metadata::Orientation::NoTransforms {
            img.apply_orientation(o);
            notes.push("EXIF-rotated".into());
        }
    }
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err("image has no pixels".into());
    }
    let short = w.min(h);
    if short < size {
        notes.push(format!("upscaled (smaller than {size})"));
    }
    // The centre square, resampled once: the same region as "shorter side to `size`, then
    // centre crop", at a fraction of the cost on wide images.
    let (x0, y0) = ((w - short) / 2, (h - short) / 2);
    let kernel = if short >= size {
        Kernel::Triangle
    } else {
        Kernel::CatmullRom
    };
    let converted;
    let rgb = match &img {
        DynamicImage::ImageRgb8(b) => b,
        other => {
            converted = other.to_rgb8();
            &converted
        }
    };
    Ok(resize::square_to_chw(
        rgb.as_raw(),
        w,
        x0,
        y0,
        short,
        size,
        kernel,
    ))
}

/// Decodes every file of `scan` in parallel (rayon) to RGB `size x size`: shorter side to
/// `size` (triangle filter down, Catmull-Rom up), centre crop. Odd files are converted or
/// skipped and counted in the report; it is an error only if every file was skipped.
/// With `progress`, shows a progress bar with the images per second. The set is held in
/// memory; [`load_or_build`] streams to a cache instead.
pub fn preprocess(
    scan: &FolderScan,
    size: usize,
    progress: bool,
) -> Result<(ImageSet, PrepReport)> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let report = preprocess_into(scan, size, progress, &mut |img, label| {
        pixels.extend_from_slice(img);
        labels.push(label);
        Ok(())
    })?;
    let set = ImageSet {
        channels: 3,
        size,
        pixels: pixels.into(),
        labels,
        classes: scan.classes.clone(),
    };
    set.validate()?;
    Ok((set, report))
}

/// One file's outcome: its CHW bytes and conversion notes, or why it was skipped.
type Decoded = Result<(Vec<u8>, Vec<String>), String>;

/// Files decoded per parallel round: enough to keep every core busy, few enough that the
/// round's images (256 x 192 kB at 256x256) stay small whatever the set's size.
const ROUND: usize = 256;

/// [`preprocess`], handing each kept image (CHW bytes, label) to `sink` in file order
/// instead of collecting them, so memory stays bounded for sets of any size.
pub fn preprocess_into(
    scan: &FolderScan,
    size: usize,
    progress: bool,
    sink: &mut dyn FnMut(&[u8], u32) -> Result<()>,
) -> Result<PrepReport> {
    use rayon::prelude::*;
    ensure!(size > 0, "preprocessing size is 0");
    ensure!(!scan.files.is_empty(), "no image files to preprocess");
    let n = scan.files.len();
    let bar = alexnet_host::progress::bar(progress, n as u64, "preprocessing images");
    let mut report = PrepReport::default();
    for round in scan.files.chunks(ROUND) {
        let outcomes: Vec<Decoded> = round
            .par_iter()
            .map(|(path, _)| {
                let mut notes = Vec::new();
                let r = decode_one(path, size, &mut notes).map(|chw| (chw, notes));
                bar.inc(1);
                r
            })
            .collect();
        for (outcome, (path, label)) in outcomes.into_iter().zip(round) {
            match outcome {
                Ok((chw, mut notes)) => {
                    notes.sort();
                    notes.dedup();
                    for note in notes {
                        *report.converted.entry(note).or_default() += 1;
                    }
                    sink(&chw, *label)?;
                    report.decoded += 1;
                }
                Err(why) => report.skipped.push((path.clone(), why)),
            }
        }
    }
    bar.finish_and_clear();
    if report.decoded == 0 {
        bail!("every one of the {n} image files was skipped:\n{report}");
    }
    Ok(report)
}

/// FNV-1a, 64 bits: a hash that is the same in every build (std's is not promised to be).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = (self.0 ^ x as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}

/// A fingerprint of a scan: the output size, the classes, and every file's path relative to
/// `dir`, label, byte length and modification time. A changed, added or removed file
/// changes it.
pub fn fingerprint(dir: &Path, scan: &FolderScan, size: usize) -> Result<u64> {
    let mut h = Fnv::new();
    h.bytes(b"alexnet image folder v1");
    h.u64(size as u64);
    h.u64(scan.classes.len() as u64);
    for c in &scan.classes {
        h.u64(c.len() as u64);
        h.bytes(c.as_bytes());
    }
    h.u64(scan.files.len() as u64);
    for (path, label) in &scan.files {
        let rel = path.strip_prefix(dir).unwrap_or(path);
        let rel = rel.to_string_lossy();
        h.u64(rel.len() as u64);
        h.bytes(rel.as_bytes());
        h.u64(*label as u64);
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
        h.u64(meta.len());
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        h.u64(mtime);
    }
    Ok(h.0)
}

/// The preprocessed set of folder `dir`: from `cache_path` when that cache is valid and
/// was built from the same files at the same size, else scanned ([`scan`], or
/// [`scan_val`] against `train_classes`), preprocessed and cached. Returns the report
/// only when it preprocessed. Folder errors come before any decoding.
pub fn load_or_build(
    dir: &Path,
    cache_path: &Path,
    size: usize,
    train_classes: Option<&[String]>,
    progress: bool,
) -> Result<(ImageSet, Option<PrepReport>)> {
    let scan = match train_classes {
        Some(classes) => scan_val(dir, classes)?,
        None => scan(dir)?,
    };
    let fp = fingerprint(dir, &scan, size)?;
    if cache_path.exists() {
        match cache::load(cache_path) {
            Ok((set, stored)) if stored == fp && set.size == size && set.channels == 3 => {
                return Ok((set, None));
            }
            Ok(_) => {
                if progress {
                    eprintln!(
                        "{} was built from other files; rebuilding it",
                        cache_path.display()
                    );
                }
            }
            Err(e) => {
                if progress {
                    eprintln!("{e:#}; rebuilding it");
                }
            }
        }
    }
    let mut writer = cache::CacheWriter::create(cache_path, 3, size)?;
    let report = preprocess_into(&scan, size, progress, &mut |img, label| {
        writer.push(img, label)
    })?;
    writer.finish(&scan.classes, fp)?;
    let (set, _) = cache::load(cache_path)?;
    Ok((set, Some(report)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{loader, Augment, Loader, Normalize, Pca, Schedule, View};
    use alexnet_host::idx::{read_images, IdxImages, FASHION_MNIST_DIR};
    use image::{imageops::FilterType, ImageBuffer, Luma, Rgb, RgbImage, Rgba};
    use std::sync::Arc;

    const CMYK_FASHION: &[u8] = include_bytes!("../../tests/data/fashion0-cmyk.jpg");
    /// PIL: `Image.new('RGB', (40, 30), (200, 60, 20)).convert('CMYK')`, quality 95.
    const CMYK_UNIFORM: &[u8] = include_bytes!("../../tests/data/uniform-cmyk.jpg");
    /// A one-component (greyscale) JPEG by PIL; `image`'s encoder writes grey as YCbCr.
    const GREY_FASHION: &[u8] = include_bytes!("../../tests/data/fashion1-grey.jpg");

    fn fashion_test_images() -> Option<IdxImages> {
        let path = Path::new(FASHION_MNIST_DIR).join("t10k-images-idx3-ubyte.gz");
        if !path.exists() {
            println!("NOTICE: Fashion-MNIST not installed in {FASHION_MNIST_DIR}; test skipped");
            return None;
        }
        Some(read_images(&path).unwrap())
    }

    /// Fashion-MNIST image `i` as a colour picture `w x h` (bilinear upscaling; the
    /// channels differ so channel mix-ups show).
    fn colour(set: &IdxImages, i: usize, w: u32, h: u32) -> RgbImage {
        let g = set.image(i).unwrap();
        let small = RgbImage::from_fn(28, 28, |x, y| {
            let v = g[(y * 28 + x) as usize];
            Rgb([v, v / 2 + 60, 255 - v])
        });
        image::imageops::resize(&small, w, h, FilterType::Triangle)
    }

    fn jpeg(img: &DynamicImage) -> Vec<u8> {
        let mut buf = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 92)
            .encode_image(img)
            .unwrap();
        buf
    }

    fn save_png(img: &DynamicImage, path: &Path) {
        img.save_with_format(path, image::ImageFormat::Png).unwrap();
    }

    fn mkdirs(root: &Path, classes: &[&str]) {
        for c in classes {
            std::fs::create_dir_all(root.join(c)).unwrap();
        }
    }

    #[test]
    fn folder_errors_come_before_any_work() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let err = scan(&root.join("nope")).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        let err = scan(root).unwrap_err().to_string();
        assert!(err.contains("no class folders"), "{err}");

        let train = root.join("train");
        mkdirs(&train, &["cat", "dog", "emu", ".hidden"]);
        let px = DynamicImage::ImageRgb8(RgbImage::from_pixel(4, 4, Rgb([1, 2, 3])));
        save_png(&px, &train.join("cat/a.png"));
        std::fs::write(train.join("cat/b.JPEG"), jpeg(&px)).unwrap();
        std::fs::write(train.join("dog/readme.txt"), "not an image").unwrap();
        let err = scan(&train).unwrap_err().to_string();
        assert!(err.contains("no .jpg/.jpeg/.png images: dog, emu"), "{err}");
        save_png(&px, &train.join("dog/x.Png"));
        save_png(&px, &train.join("emu/y.png"));
        let s = scan(&train).unwrap();
        assert_eq!(s.classes, ["cat", "dog", "emu"]);
        let names: Vec<_> = s
            .files
            .iter()
            .map(|(p, l)| (p.file_name().unwrap().to_str().unwrap().to_string(), *l))
            .collect();
        assert_eq!(
            names,
            [
                ("a.png".to_string(), 0),
                ("b.JPEG".into(), 0),
                ("x.Png".into(), 1),
                ("y.png".into(), 2)
            ]
        );

        // Val: may lack classes, may not add any.
        let val = root.join("val");
        mkdirs(&val, &["emu", "cat"]);
        save_png(&px, &val.join("emu/1.png"));
        save_png(&px, &val.join("cat/2.png"));
        let v = scan_val(&val, &s.classes).unwrap();
        assert_eq!(v.classes, s.classes);
        assert_eq!(v.files.iter().map(|(_, l)| *l).collect::<Vec<_>>(), [0, 2]);
        mkdirs(&val, &["yak", "ant"]);
        save_png(&px, &val.join("yak/3.png"));
        save_png(&px, &val.join("ant/4.png"));
        let err = scan_val(&val, &s.classes).unwrap_err().to_string();
        assert!(err.contains("2 validation class(es) are not in the training set: ant, yak"));
        // A folder whose every file is unreadable is an error, not an empty set.
        let bad = root.join("bad");
        mkdirs(&bad, &["x"]);
        std::fs::write(bad.join("x/empty.jpg"), b"").unwrap();
        std::fs::write(bad.join("x/text.png"), b"hello").unwrap();
        let err = preprocess(&scan(&bad).unwrap(), 8, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("every one of the 2 image files was skipped"),
            "{err}"
        );
        // load_or_build refuses before writing any cache.
        let cache = root.join("val.cache");
        assert!(load_or_build(&val, &cache, 8, Some(&s.classes), false).is_err());
        assert!(!cache.exists());
    }

    #[test]
    fn preprocesses_real_images_and_odd_files() {
        let Some(fashion) = fashion_test_images() else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let train = tmp.path().join("train");
        let names = alexnet_host::profile::Dataset::FashionMnist.labels();
        let labels = alexnet_host::idx::read_labels(
            Path::new(FASHION_MNIST_DIR).join("t10k-labels-idx1-ubyte.gz"),
        )
        .unwrap();
        // 20 real images, JPEG and PNG, at ImageNet-like sizes, in their class folders.
        let sizes = [(300, 260), (260, 400), (320, 256), (256, 256), (280, 300)];
        for i in 0..20 {
            let class = names[labels[i] as usize].replace('/', "-");
            std::fs::create_dir_all(train.join(&class)).unwrap();
            let (w, h) = sizes[i % sizes.len()];
            let img = DynamicImage::ImageRgb8(colour(&fashion, i, w, h));
            if i % 2 == 0 {
                std::fs::write(train.join(&class).join(format!("{i:02}.jpg")), jpeg(&img)).unwrap();
            } else {
                save_png(&img, &train.join(&class).join(format!("{i:02}.png")));
            }
        }
        // The odd files, in a class of their own.
        let odd = train.join("zz-odd");
        std::fs::create_dir_all(&odd).unwrap();
        let full = jpeg(&DynamicImage::ImageRgb8(colour(&fashion, 20, 300, 280)));
        std::fs::write(odd.join("truncated.jpg"), &full[..full.len() / 2]).unwrap();
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(colour(&fashion, 20, 300, 280))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        std::fs::write(odd.join("truncated.png"), &png[..png.len() * 2 / 3]).unwrap();
        std::fs::write(odd.join("cmyk.jpg"), CMYK_FASHION).unwrap();
        std::fs::write(odd.join("cmyk-uniform.jpg"), CMYK_UNIFORM).unwrap();
        let rgb = colour(&fashion, 21, 300, 270);
        let deep: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_fn(300, 270, |x, y| {
            Rgb(rgb.get_pixel(x, y).0.map(|v| v as u16 * 257))
        });
        save_png(&DynamicImage::ImageRgb16(deep), &odd.join("deep16.png"));
        let grey: ImageBuffer<Luma<u8>, Vec<u8>> = ImageBuffer::from_fn(280, 280, |x, y| {
            Luma([rgb.get_pixel(x % 300, y % 270).0[0]])
        });
        save_png(
            &DynamicImage::ImageLuma8(grey.clone()),
            &odd.join("grey.png"),
        );
        std::fs::write(odd.join("grey.jpg"), GREY_FASHION).unwrap();
        let rgba: ImageBuffer<Rgba<u8>, Vec<u8>> = ImageBuffer::from_fn(300, 270, |x, y| {
            let p = rgb.get_pixel(x, y).0;
            Rgba([p[0], p[1], p[2], (x % 256) as u8])
        });
        save_png(&DynamicImage::ImageRgba8(rgba), &odd.join("rgba.png"));
        save_png(
            &DynamicImage::ImageRgb8(colour(&fashion, 22, 20, 15)),
            &odd.join("small.png"),
        );
        std::fs::write(odd.join("empty.jpg"), b"").unwrap();
        std::fs::write(odd.join("fake.png"), b"this is no image at all").unwrap();
        std::fs::write(odd.join("notes.txt"), b"ignored").unwrap();
        // Known colours: a uniform JPEG and a uniform PNG, wider than tall.
        let uniform = DynamicImage::ImageRgb8(RgbImage::from_pixel(400, 300, Rgb([30, 140, 220])));
        std::fs::write(odd.join("uniform.jpg"), jpeg(&uniform)).unwrap();
        save_png(
            &DynamicImage::ImageRgb8(RgbImage::from_pixel(300, 500, Rgb([250, 5, 99]))),
            &odd.join("uniform.png"),
        );

        let s = scan(&train).unwrap();
        assert_eq!(s.files.len(), 20 + 13, "the .txt file is ignored");
        let (set, report) = preprocess(&s, 256, false).unwrap();
        println!("{report}");
        let skipped: BTreeMap<String, String> = report
            .skipped
            .iter()
            .map(|(p, why)| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    why.clone(),
                )
            })
            .collect();
        assert_eq!(
            skipped.keys().collect::<Vec<_>>(),
            ["empty.jpg", "fake.png", "truncated.jpg", "truncated.png"]
        );
        assert!(skipped["truncated.jpg"].contains("truncated"));
        assert!(skipped["truncated.png"].contains("cannot decode"));
        assert!(skipped["empty.jpg"].contains("empty"));
        assert!(skipped["fake.png"].contains("not a JPEG or PNG"));
        assert_eq!(report.decoded, 20 + 9);
        let want: BTreeMap<String, usize> = [
            ("CMYK", 2),
            ("16-bit", 1),
            ("greyscale", 2),
            ("alpha dropped", 1),
            ("upscaled (smaller than 256)", 3),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(report.converted, want);
        let text = report.to_string();
        assert!(text.contains("29 images decoded, 4 skipped"), "{text}");

        assert_eq!((set.channels, set.size, set.len()), (3, 256, 29));
        assert_eq!(set.pixels.len(), 29 * 3 * 256 * 256);
        assert_eq!(set.classes, s.classes);
        assert_eq!(*set.classes.last().unwrap(), "zz-odd");
        // Labels follow the folders, and the kept images keep their order.
        let kept: Vec<u32> = s
            .files
            .iter()
            .filter(|(p, _)| !skipped.contains_key(&*p.file_name().unwrap().to_string_lossy()))
            .map(|(_, l)| *l)
            .collect();
        assert_eq!(set.labels, kept);
        let position = |name: &str| {
            s.files
                .iter()
                .filter(|(p, _)| !skipped.contains_key(&*p.file_name().unwrap().to_string_lossy()))
                .position(|(p, _)| p.file_name().unwrap() == name)
                .unwrap()
        };
        let planes = |i: usize| {
            let img = set.image(i).unwrap();
            let p = 256 * 256;
            [&img[..p], &img[p..2 * p], &img[2 * p..]]
        };
        // A 256x256 PNG is stored exactly (CHW).
        let exact = colour(&fashion, 3, 256, 256);
        let [r, g, b] = planes(position("03.png"));
        for (k, px) in exact.pixels().enumerate() {
            assert_eq!([r[k], g[k], b[k]], px.0);
        }
        // Uniform colours survive the resize and crop (JPEG within its error).
        for (name, colour, tol) in [
            ("uniform.jpg", [30u8, 140, 220], 3),
            ("uniform.png", [250, 5, 99], 0),
            ("cmyk-uniform.jpg", [200, 60, 20], 4),
        ] {
            let ch = planes(position(name));
            for c in 0..3 {
                let (lo, hi) = (
                    *ch[c].iter().min().unwrap() as i32,
                    *ch[c].iter().max().unwrap() as i32,
                );
                let want = colour[c] as i32;
                assert!(
                    (lo - want).abs() <= tol && (hi - want).abs() <= tol,
                    "{name} channel {c}: {lo}..{hi}, want {want}"
                );
            }
        }
        // The CMYK picture is the real image: bright where the original is bright.
        let [r, _, b] = planes(position("cmyk.jpg"));
        let mean = |p: &[u8]| p.iter().map(|&v| v as f64).sum::<f64>() / p.len() as f64;
        assert!(
            mean(r) < mean(b),
            "red follows the garment, blue its inverse"
        );
        // The 16-bit PNG matches its 8-bit source after the same resize.
        let (d16, d8) = (position("deep16.png"), position("rgba.png"));
        let diff: f64 = set
            .image(d16)
            .unwrap()
            .iter()
            .zip(set.image(d8).unwrap())
            .map(|(&a, &b)| (a as f64 - b as f64).abs())
            .sum::<f64>()
            / (3.0 * 65536.0);
        assert!(diff < 1.0, "16-bit and RGBA versions differ by {diff}");

        // And the loader on it: random 224 crops, flips, PCA noise, per-pixel mean.
        let set = Arc::new(set);
        let norm = Arc::new(Normalize {
            pixel_scale: 1.0,
            mean: Normalize::per_pixel_mean(&set, 1.0, 0),
            std: None,
        });
        let pca = Pca::from_set(&set, 1.0, 100).unwrap();
        assert!(pca.eigenvalues[0] > pca.eigenvalues[2] && pca.eigenvalues[2] >= 0.0);
        let aug = Arc::new(Augment {
            crop: 224,
            pad: 0,
            flip: true,
            pca: Some(pca),
            pca_std: 0.1,
        });
        let order = loader::shuffled(set.len(), 5, 0);
        let run = |workers| {
            Loader::new(
                set.clone(),
                order.clone(),
                norm.clone(),
                aug.clone(),
                Schedule {
                    batch_size: 8,
                    view: View::Random,
                    seed: 5,
                    epoch: 0,
                    workers,
                    prefetch: 2,
                },
            )
            .map(|b| b.unwrap())
            .collect::<Vec<_>>()
        };
        let batches = run(2);
        assert_eq!(batches.len(), 4);
        assert_eq!(batches[3].n, 29 - 24);
        assert!(batches
            .iter()
            .all(|b| b.x.len() == b.n * 3 * 224 * 224 && b.x.iter().all(|v| v.is_finite())));
        let mean_value: f64 = batches
            .iter()
            .flat_map(|b| b.x.iter())
            .map(|&v| v as f64)
            .sum::<f64>()
            / (29.0 * 3.0 * 224.0 * 224.0);
        assert!(
            mean_value.abs() < 10.0,
            "mean-subtracted inputs average {mean_value}"
        );
        assert_eq!(batches, run(1));
    }

    #[test]
    fn load_or_build_reuses_and_refreshes_the_cache() {
        let Some(fashion) = fashion_test_images() else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let train = tmp.path().join("train");
        mkdirs(&train, &["a", "b"]);
        for i in 0..6 {
            let img = DynamicImage::ImageRgb8(colour(&fashion, i, 48, 40));
            let class = if i % 2 == 0 { "a" } else { "b" };
            std::fs::write(train.join(class).join(format!("{i}.jpg")), jpeg(&img)).unwrap();
        }
        let cache_path = tmp.path().join("cache/train-32.bin");
        let (first, report) = load_or_build(&train, &cache_path, 32, None, false).unwrap();
        let report = report.expect("first call preprocesses");
        assert_eq!((report.decoded, first.len(), first.size), (6, 6, 32));
        assert!(cache_path.exists());
        let (second, report) = load_or_build(&train, &cache_path, 32, None, false).unwrap();
        assert!(report.is_none(), "second call uses the cache");
        assert_eq!(second.pixels, first.pixels);
        assert_eq!(second.labels, first.labels);
        assert_eq!(second.classes, first.classes);
        // Another size is another fingerprint.
        let other = tmp.path().join("cache/train-16.bin");
        let (small, report) = load_or_build(&train, &other, 16, None, false).unwrap();
        assert!(report.is_some() && small.size == 16);
        // A new file changes the fingerprint: rebuilt.
        let img = DynamicImage::ImageRgb8(colour(&fashion, 9, 50, 50));
        save_png(&img, &train.join("b/new.png"));
        let (third, report) = load_or_build(&train, &cache_path, 32, None, false).unwrap();
        assert_eq!(report.map(|r| r.decoded), Some(7));
        assert_eq!(third.len(), 7);
        assert!(load_or_build(&train, &cache_path, 32, None, false)
            .unwrap()
            .1
            .is_none());
        // A corrupt cache is rebuilt, not trusted.
        let bytes = std::fs::read(&cache_path).unwrap();
        std::fs::write(&cache_path, &bytes[..bytes.len() - 10]).unwrap();
        let (fourth, report) = load_or_build(&train, &cache_path, 32, None, false).unwrap();
        assert!(report.is_some());
        assert_eq!(fourth.pixels, third.pixels);
        // Val against the train classes.
        let val = tmp.path().join("val");
        mkdirs(&val, &["b"]);
        save_png(&img, &val.join("b/v.png"));
        let val_cache = tmp.path().join("cache/val.bin");
        let (v, _) = load_or_build(&val, &val_cache, 32, Some(&third.classes), false).unwrap();
        assert_eq!(v.labels, [1]);
        assert_eq!(v.classes, third.classes);
    }
}
