//! Sample inputs for calibration and evaluation: an image folder or an IDX file, prepared
//! with a model's own preprocessing.

use crate::idx;
use crate::image_input::{load_image, prepare_image};
use alexnet_core::{Preprocess, Shape};
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};

/// Prepared inputs, and the files that could not be used (with the reason).
pub struct Samples {
    /// `[C, H, W]` inputs.
    pub inputs: Vec<Vec<f32>>,
    /// Skipped files.
    pub skipped: Vec<(PathBuf, String)>,
}

/// File extensions the image decoder reads (JPEG, PNG, BMP, WebP, GIF, TIFF, PNM), searched
/// for in folders.
pub const IMAGE_EXTENSIONS: [&str; 13] = [
    "jpg", "jpeg", "png", "bmp", "webp", "gif", "tif", "tiff", "pgm", "ppm", "pnm", "pbm", "pam",
];

/// Whether `path` has one of [`IMAGE_EXTENSIONS`] (any case).
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Every image file under `dir`, recursively, each folder's entries in sorted order.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read folder {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("cannot read folder {}", dir.display()))?;
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out)?;
            } else if is_image(&path) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    Ok(files)
}

/// A labelled evaluation set: image files and each one's class, an output of the model.
#[derive(Debug)]
pub struct LabelledFiles {
    /// The images, in evaluation order.
    pub files: Vec<PathBuf>,
    /// Each image's class.
    pub classes: Vec<usize>,
    /// How the classes were found, for the report.
    pub how: String,
}

/// Finds the labelled images of `dir`, either
/// - a flat folder and a `labels` file (ILSVRC's ground-truth format): one line per image,
///   in sorted file order, holding a class index (0-based, or with `synsets` 1-based into it),
///   or a class name of the model; or
/// - one subfolder per class (`val/<class>/...`, as torchvision's `ImageFolder`): a folder named
///   after one of the model's labels (or a `synsets` line's ID) is that class; otherwise the
///   sorted folders are classes 0, 1, 2...
///
/// `synsets` lists WordNet IDs, one per line (the first word of each line): line `k` is the
/// labels file's ID `k`, and the model's classes are the IDs in sorted order (how torchvision
/// and Caffe number ImageNet's classes). For ILSVRC 2012's devkit ground truth
/// (`ILSVRC2012_validation_ground_truth.txt`) that is the synsets in the devkit's ID order
/// (`meta.mat`'s `ILSVRC2012_ID` 1 to 1000); a labels file of WordNet IDs (from
/// `LOC_val_solution.csv`, one per image in sorted file order) works with any list of the
/// IDs, such as `LOC_synset_mapping.txt`.
pub fn labelled_folder(
    dir: &Path,
    labels: Option<&Path>,
    synsets: Option<&Path>,
    model_labels: &[String],
    classes: usize,
) -> Result<LabelledFiles> {
    ensure!(dir.is_dir(), "{} is not a folder", dir.display());
    let synsets = synsets.map(read_synsets).transpose()?;
    // A synset ID's class: its place among the sorted IDs.
    let sorted: Option<Vec<&String>> = synsets.as_ref().map(|ids| {
        let mut sorted: Vec<&String> = ids.iter().collect();
        sorted.sort();
        sorted
    });
    let by_synset = |id: &str| sorted.as_ref()?.iter().position(|s| *s == id);
    let by_name = |name: &str| model_labels.iter().position(|l| l == name);
    let check = |class: usize, what: &dyn std::fmt::Display| -> Result<usize> {
        ensure!(
            class < classes,
            "{what} is class {class}, but the model has {classes} classes"
        );
        Ok(class)
    };
    if let Some(labels) = labels {
        let files = image_files(dir)?;
        ensure!(!files.is_empty(), "no images under {}", dir.display());
        let text = std::fs::read_to_string(labels)
            .with_context(|| format!("cannot read labels {}", labels.display()))?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        ensure!(
            lines.len() == files.len(),
            "{} has {} labels for the {} images under {}: one per image, in sorted file order",
            labels.display(),
            lines.len(),
            files.len(),
            dir.display()
        );
        let classes = lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let at = format!("{} line {}", labels.display(), i + 1);
                let class = match (line.parse::<usize>(), &synsets) {
                    (Ok(id), Some(ids)) => {
                        let wnid = id
                            .checked_sub(1)
                            .and_then(|k| ids.get(k))
                            .with_context(|| format!("{at}: ID {id} is not in the synsets"))?;
                        by_synset(wnid).with_context(|| format!("{at}: {wnid}"))?
                    }
                    (Ok(class), None) => class,
                    (Err(_), _) => by_name(line)
                        .or_else(|| by_synset(line))
                        .with_context(|| format!("{at}: {line:?} is not a class of the model"))?,
                };
                check(class, &at)
            })
            .collect::<Result<_>>()?;
        return Ok(LabelledFiles {
            files,
            classes,
            how: format!("labels from {}", labels.display()),
        });
    }
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    ensure!(
        !folders.is_empty(),
        "{} has no class folders (<class>/<images>); for a flat folder give a labels file",
        dir.display()
    );
    let names: Vec<String> = folders
        .iter()
        .map(|f| {
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let named: Option<Vec<usize>> = names
        .iter()
        .map(|n| by_name(n).or_else(|| by_synset(n)))
        .collect();
    let (folder_classes, how) = match named {
        Some(c) => (
            c,
            "class folders named after the model's classes".to_string(),
        ),
        None => {
            ensure!(
                folders.len() <= classes,
                "{} has {} class folders, but the model has {classes} classes",
                dir.display(),
                folders.len()
            );
            let mut how =
                "class folders in sorted order (as torchvision's ImageFolder)".to_string();
            if folders.len() != classes {
                // A subset of the classes, say: folder k is taken as class k, which is right
                // only if the subset is the first classes, in order.
                how += &format!(
                    "; warning: {} folders for {classes} classes, folder k taken as class k \
                     (name the folders after the classes, or give --labels)",
                    folders.len()
                );
            }
            ((0..folders.len()).collect(), how)
        }
    };
    let mut set = LabelledFiles {
        files: Vec::new(),
        classes: Vec::new(),
        how,
    };
    for (folder, &class) in folders.iter().zip(&folder_classes) {
        check(class, &folder.display())?;
        for file in image_files(folder)? {
            set.files.push(file);
            set.classes.push(class);
        }
    }
    ensure!(!set.files.is_empty(), "no images under {}", dir.display());
    Ok(set)
}

/// The WordNet IDs of a synset mapping, one per line (the first word of each).
fn read_synsets(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read synsets {}", path.display()))?;
    let ids: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    ensure!(!ids.is_empty(), "{} holds no synset IDs", path.display());
    Ok(ids)
}

/// Up to `count` images spread evenly over the folder's sorted files (so every class folder
/// contributes); unreadable images are skipped and listed.
pub fn from_folder(
    dir: &Path,
    count: usize,
    prep: &Preprocess<'_>,
    input: Shape,
) -> Result<Samples> {
    let files = image_files(dir)?;
    ensure!(!files.is_empty(), "no images under {}", dir.display());
    let take = count.min(files.len()).max(1);
    let mut samples = Samples {
        inputs: Vec::new(),
        skipped: Vec::new(),
    };
    for k in 0..take {
        let path = &files[k * files.len() / take];
        match load_image(path, prep, input) {
            Ok(x) => samples.inputs.push(x),
            Err(e) => samples.skipped.push((path.clone(), format!("{e:#}"))),
        }
    }
    if let (true, Some((path, why))) = (samples.inputs.is_empty(), samples.skipped.first()) {
        anyhow::bail!(
            "none of the {take} images under {} could be used; {}: {why}",
            dir.display(),
            path.display()
        );
    }
    Ok(samples)
}

/// The first `count` images of an IDX file (plain or gzip).
pub fn from_idx(path: &Path, count: usize, prep: &Preprocess<'_>, input: Shape) -> Result<Samples> {
    let set = idx::read_images(path)?;
    ensure!(set.count > 0, "{} holds no images", path.display());
    let mut inputs = Vec::new();
    for i in 0..count.min(set.count) {
        let pixels = set.image(i).context("IDX image out of range")?.to_vec();
        let img = image::GrayImage::from_raw(set.cols as u32, set.rows as u32, pixels)
            .context("IDX size")?;
        inputs.push(prepare_image(
            &image::DynamicImage::ImageLuma8(img),
            prep,
            input,
        )?);
    }
    Ok(Samples {
        inputs,
        skipped: Vec::new(),
    })
}

/// Images from `path`: an IDX file if it is a file, else an image folder.
pub fn load(path: &Path, count: usize, prep: &Preprocess<'_>, input: Shape) -> Result<Samples> {
    ensure!(count > 0, "asked for 0 samples");
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        from_folder(path, count, prep, input)
    } else {
        from_idx(path, count, prep, input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files named like images (the classes come from names and labels, not from decoding).
    fn touch(dir: &Path, names: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        for n in names {
            std::fs::write(dir.join(n), b"").unwrap();
        }
    }

    #[test]
    fn ilsvrc_ground_truth_folders_and_names_give_the_classes() {
        let dir = tempfile::tempdir().unwrap();
        let at = |p: &str| dir.path().join(p);
        let labels: Vec<String> = ["cat", "dog", "eel"].map(String::from).to_vec();
        let find = |d: &str, truth: Option<&str>, synsets: Option<&str>| {
            labelled_folder(
                &at(d),
                truth.map(&at).as_deref(),
                synsets.map(&at).as_deref(),
                &labels,
                3,
            )
        };
        touch(&at("flat"), &["b.png", "a.jpg", "c.JPEG"]);
        // Devkit order: ID 1 is n03, which sorts last, so it is class 2.
        std::fs::write(at("synsets.txt"), "n03 eel\nn01 cat\nn02 dog\n").unwrap();
        std::fs::write(at("ids.txt"), "1\n2\n3\n").unwrap();
        let set = find("flat", Some("ids.txt"), Some("synsets.txt")).unwrap();
        let names: Vec<_> = set.files.iter().map(|f| f.file_name().unwrap()).collect();
        assert_eq!(names, ["a.jpg", "b.png", "c.JPEG"]);
        assert_eq!(set.classes, [2, 0, 1]);
        std::fs::write(at("wnids.txt"), "n02\nn03\nn01\n").unwrap();
        assert_eq!(
            find("flat", Some("wnids.txt"), Some("synsets.txt"))
                .unwrap()
                .classes,
            [1, 2, 0]
        );
        std::fs::write(at("names.txt"), "dog\ncat\neel\n").unwrap();
        assert_eq!(
            find("flat", Some("names.txt"), None).unwrap().classes,
            [1, 0, 2]
        );
        std::fs::write(at("bad.txt"), "dog\nfox\neel\n").unwrap();
        let e = format!("{:#}", find("flat", Some("bad.txt"), None).unwrap_err());
        assert!(
            e.contains("line 2: \"fox\" is not a class of the model"),
            "{e}"
        );
        std::fs::write(at("far.txt"), "0\n1\n7\n").unwrap();
        let e = format!("{:#}", find("flat", Some("far.txt"), None).unwrap_err());
        assert!(e.contains("is class 7, but the model has 3 classes"), "{e}");

        // Class folders named after the model's classes, in any order.
        touch(&at("named/dog"), &["x.png"]);
        touch(&at("named/cat"), &["y.png", "z.png"]);
        let set = find("named", None, None).unwrap();
        assert_eq!(set.classes, [0, 0, 1]);
        assert!(set.how.contains("named after the model's classes"));
        // Otherwise sorted order, with a warning when the count differs.
        touch(&at("plain/b"), &["x.png"]);
        touch(&at("plain/a"), &["y.png"]);
        let set = find("plain", None, None).unwrap();
        assert_eq!(set.classes, [0, 1]);
        assert!(
            set.how.contains("warning: 2 folders for 3 classes"),
            "{}",
            set.how
        );
    }
}
