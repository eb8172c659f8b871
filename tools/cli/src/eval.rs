//! `alexnet eval`: top-1/top-5 accuracy of a blob (f32 or int8) through the core, on a
//! labelled IDX set or on a folder of images (ImageNet's layouts), centre crop or the paper's
//! ten crops, with a per-class CSV and a confusion matrix.

use crate::infer::Runner;
use alexnet_core::postprocess::{softmax, top_k};
use alexnet_core::Model;
use alexnet_host::dataset::{self, LabelledFiles};
use alexnet_host::image_input::{load_image, load_ten_crops};
use alexnet_host::{idx, BlobFile};
use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::time::Instant;

/// The most classes the confusion-matrix picture draws.
const MAX_CONFUSION_CLASSES: usize = 50;

/// What `alexnet eval` was asked.
pub struct Request<'a> {
    pub model: &'a Path,
    pub images: &'a Path,
    pub labels: Option<&'a Path>,
    pub synsets: Option<&'a Path>,
    pub limit: Option<usize>,
    pub threads: Option<usize>,
    pub ten_crop: bool,
    pub csv: Option<&'a Path>,
    pub confusion: Option<&'a Path>,
}

/// Per-class counts and the confusion matrix, filled one image at a time.
struct Tally {
    images: Vec<usize>,
    top1: Vec<usize>,
    top5: Vec<usize>,
    /// `confusion[truth][prediction]`.
    confusion: Vec<Vec<usize>>,
}

impl Tally {
    fn new(classes: usize) -> Tally {
        Tally {
            images: vec![0; classes],
            top1: vec![0; classes],
            top5: vec![0; classes],
            confusion: vec![vec![0; classes]; classes],
        }
    }

    fn add(&mut self, truth: usize, ranked: &[usize]) {
        self.images[truth] += 1;
        self.top1[truth] += usize::from(ranked.first() == Some(&truth));
        self.top5[truth] += usize::from(ranked.iter().take(5).any(|&c| c == truth));
        if let Some(&best) = ranked.first() {
            self.confusion[truth][best] += 1;
        }
    }

    fn total(&self) -> (usize, usize, usize) {
        let sum = |v: &[usize]| v.iter().sum();
        (sum(&self.images), sum(&self.top1), sum(&self.top5))
    }
}

pub fn run(r: &Request<'_>) -> Result<()> {
    ensure!(r.limit != Some(0), "--limit 0: nothing to evaluate");
    let file = BlobFile::read(r.model)?;
    let model = file.model()?;
    let mut runner = Runner::new(&model, r.threads)?;
    let started = Instant::now();
    let (tally, skipped, source) = if r.images.is_dir() {
        let set = labelled_set(&model, r)?;
        eprintln!(
            "{}: {} images, {} ({})",
            r.images.display(),
            set.files.len(),
            set.how,
            if r.ten_crop {
                "ten crops"
            } else {
                "centre crop"
            }
        );
        let (tally, skipped) =
            evaluate(&model, &mut runner, folder_items(&model, &set, r.ten_crop))?;
        (tally, skipped, "images")
    } else {
        ensure!(
            !r.ten_crop,
            "--ten-crop takes an image folder; IDX images are used whole"
        );
        let labels = r
            .labels
            .context("an IDX image file needs its IDX labels (--labels)")?;
        if r.confusion.is_some() {
            let classes: Vec<usize> = idx::read_labels(labels)?
                .iter()
                .map(|&l| l as usize)
                .collect();
            drawable(&classes)?;
        }
        let items = idx_items(&model, r.images, labels, r.limit)?;
        let (tally, skipped) = evaluate(&model, &mut runner, items)?;
        (tally, skipped, "IDX images")
    };
    let secs = started.elapsed().as_secs_f64();
    let (n, top1, top5) = tally.total();
    ensure!(n > 0, "no image could be evaluated ({skipped} skipped)");
    println!(
        "{}: {n} {source}, top-1 accuracy {:.2}%, top-5 accuracy {:.2}% ({}, {}{}, {:.2} ms per image, {:.1} images/s)",
        r.model.display(),
        100.0 * top1 as f64 / n as f64,
        100.0 * top5 as f64 / n as f64,
        if model.precision() == alexnet_core::Precision::Int8 {
            "int8"
        } else {
            "f32"
        },
        runner.threads_label(),
        if r.ten_crop { ", ten crops" } else { "" },
        1e3 * secs / n as f64,
        n as f64 / secs
    );
    let label = |c: usize| {
        model
            .labels()
            .and_then(|l| l.get(c))
            .unwrap_or("")
            .to_string()
    };
    if let Some(csv) = r.csv {
        write_csv(csv, &tally, &label)?;
        eprintln!("per-class accuracy written to {}", csv.display());
    }
    if let Some(png) = r.confusion {
        let shown = write_confusion(png, &tally)?;
        eprintln!(
            "confusion matrix of {shown} classes written to {} (rows: true class, columns: \
             predicted, in class order; the last column counts predictions of other classes)",
            png.display()
        );
    }
    ensure!(
        skipped == 0,
        "{skipped} of {} images skipped (named above)",
        n + skipped
    );
    Ok(())
}

fn labelled_set(model: &Model<'_>, r: &Request<'_>) -> Result<LabelledFiles> {
    let model_labels: Vec<String> = model
        .labels()
        .map(|l| {
            (0..l.len())
                .filter_map(|i| l.get(i))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut set = dataset::labelled_folder(
        r.images,
        r.labels,
        r.synsets,
        &model_labels,
        model.classes(),
    )?;
    if let Some(limit) = r.limit.filter(|&l| l < set.files.len()) {
        // Spread over the whole set, so that every class folder contributes.
        let n = set.files.len();
        let pick: Vec<usize> = (0..limit).map(|k| k * n / limit).collect();
        set.files = pick.iter().map(|&i| set.files[i].clone()).collect();
        set.classes = pick.iter().map(|&i| set.classes[i]).collect();
    }
    if r.confusion.is_some() {
        drawable(&set.classes)?;
    }
    Ok(set)
}

/// Refuses, before any work, a set with more classes than the confusion matrix draws.
fn drawable(classes: &[usize]) -> Result<()> {
    let mut present = classes.to_vec();
    present.sort_unstable();
    present.dedup();
    ensure!(
        present.len() <= MAX_CONFUSION_CLASSES,
        "--confusion draws at most {MAX_CONFUSION_CLASSES} classes; the set has {}",
        present.len()
    );
    Ok(())
}

/// One image to evaluate: its name, its class, and its prepared crops (one, or the ten crops)
/// or why they could not be made.
type Item = (String, usize, Result<Vec<Vec<f32>>>);

/// The shared evaluation loop: each item's crops through the model, ranked on the logits (one
/// crop) or on the mean of their softmax outputs (the paper's ten crops, §4.1); items that
/// could not be prepared are skipped with their reason and counted.
fn evaluate(
    model: &Model<'_>,
    runner: &mut Runner<'_, '_>,
    items: impl ExactSizeIterator<Item = Item>,
) -> Result<(Tally, usize)> {
    let classes = model.classes();
    let mut tally = Tally::new(classes);
    let mut logits = vec![0.0f32; classes];
    let mut probs = vec![0.0f32; classes];
    let mut mean = vec![0.0f32; classes];
    let mut best = vec![0usize; 5.min(classes)];
    let (mut skipped, mut top1) = (0, 0usize);
    let bar = alexnet_host::progress::bar(true, items.len() as u64, "evaluating");
    for (name, truth, prepared) in items {
        bar.inc(1);
        ensure!(
            truth < classes,
            "{name} is class {truth}, but the model has {classes} classes"
        );
        let crops = match prepared {
            Ok(crops) => crops,
            Err(e) => {
                bar.suspend(|| eprintln!("skipped {name}: {e:#}"));
                skipped += 1;
                continue;
            }
        };
        if let [one] = &crops[..] {
            runner.logits(one, &mut logits)?;
        } else {
            mean.fill(0.0);
            for crop in &crops {
                runner.logits(crop, &mut logits)?;
                softmax(&logits, &mut probs).map_err(anyhow::Error::msg)?;
                for (m, p) in mean.iter_mut().zip(&probs) {
                    *m += p / crops.len() as f32;
                }
            }
            logits.copy_from_slice(&mean);
        }
        let k = top_k(&logits, &mut best);
        tally.add(truth, &best[..k]);
        top1 += usize::from(best.first() == Some(&truth));
        let done = bar.position() as usize - skipped;
        bar.set_message(format!("top-1 {:.1}%", 100.0 * top1 as f64 / done as f64));
    }
    bar.finish_and_clear();
    Ok((tally, skipped))
}

/// The folder's images, loaded and prepared one at a time.
fn folder_items<'s>(
    model: &'s Model<'_>,
    set: &'s LabelledFiles,
    ten_crop: bool,
) -> impl ExactSizeIterator<Item = Item> + 's {
    let (prep, input) = (model.preprocess(), model.arch().input);
    set.files
        .iter()
        .zip(&set.classes)
        .map(move |(path, &truth)| {
            let prepared = if ten_crop {
                load_ten_crops(path, prep, input)
            } else {
                load_image(path, prep, input).map(|x| vec![x])
            };
            (path.display().to_string(), truth, prepared)
        })
}

/// The first `limit` images of an IDX file with their labels.
fn idx_items(
    model: &Model<'_>,
    images: &Path,
    labels: &Path,
    limit: Option<usize>,
) -> Result<impl ExactSizeIterator<Item = Item>> {
    let labels = idx::read_labels(labels)?;
    let count = limit.unwrap_or(usize::MAX).min(labels.len());
    let samples = dataset::from_idx(images, count, model.preprocess(), model.arch().input)?;
    ensure!(
        samples.inputs.len() == count,
        "{} holds {} images for {count} labels",
        images.display(),
        samples.inputs.len()
    );
    let name = images.display().to_string();
    Ok(samples
        .inputs
        .into_iter()
        .zip(labels)
        .enumerate()
        .map(move |(i, (x, label))| (format!("{name} image {i}"), label as usize, Ok(vec![x]))))
}

fn write_csv(path: &Path, tally: &Tally, label: &dyn Fn(usize) -> String) -> Result<()> {
    let mut csv = String::from("class,label,images,top1,top5,top1_accuracy,top5_accuracy\n");
    for c in (0..tally.images.len()).filter(|&c| tally.images[c] > 0) {
        let n = tally.images[c] as f64;
        csv += &format!(
            "{c},\"{}\",{},{},{},{:.4},{:.4}\n",
            label(c).replace('"', "\"\""),
            tally.images[c],
            tally.top1[c],
            tally.top5[c],
            tally.top1[c] as f64 / n,
            tally.top5[c] as f64 / n
        );
    }
    alexnet_host::atomic::write_atomic(path, csv.as_bytes())
}

/// Draws the confusion matrix of the classes that have images: one cell of `CELL` pixels per
/// (true, predicted) pair, from white (none of the row's images) to dark blue (all), and a last
/// column for predictions outside those classes. Returns how many classes it drew.
fn write_confusion(path: &Path, tally: &Tally) -> Result<usize> {
    const CELL: u32 = 12;
    let present: Vec<usize> = (0..tally.images.len())
        .filter(|&c| tally.images[c] > 0)
        .collect();
    let n = present.len() as u32;
    let (width, height) = ((n + 1) * CELL + 1, n * CELL + 1);
    let mut img = image::RgbImage::from_pixel(width, height, image::Rgb([128, 128, 128]));
    for (row, &truth) in present.iter().enumerate() {
        let counts = &tally.confusion[truth];
        let total = tally.images[truth].max(1) as f64;
        let inside: usize = present.iter().map(|&p| counts[p]).sum();
        let outside = counts.iter().sum::<usize>() - inside;
        let cells = present.iter().map(|&p| counts[p]).chain([outside]);
        for (col, count) in cells.enumerate() {
            let f = count as f64 / total;
            let shade = |white: f64, dark: f64| (white + (dark - white) * f).round() as u8;
            let colour = image::Rgb([shade(255.0, 8.0), shade(255.0, 48.0), shade(255.0, 107.0)]);
            for y in 0..CELL - 1 {
                for x in 0..CELL - 1 {
                    img.put_pixel(col as u32 * CELL + 1 + x, row as u32 * CELL + 1 + y, colour);
                }
            }
        }
    }
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    alexnet_host::atomic::write_atomic(path, &png)?;
    Ok(present.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confusion_matrix_takes_at_most_50_classes() {
        let fifty: Vec<usize> = (0..50).chain(0..50).collect();
        assert!(drawable(&fifty).is_ok());
        let e = drawable(&(0..51).collect::<Vec<_>>())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--confusion draws at most 50 classes; the set has 51");
    }

    #[test]
    fn the_tally_counts_top1_top5_and_confusions() {
        let mut t = Tally::new(6);
        t.add(2, &[2, 0, 1, 3, 4]);
        t.add(2, &[0, 1, 3, 4, 5]);
        t.add(5, &[0, 1, 3, 4, 5]);
        assert_eq!(t.total(), (3, 1, 2));
        assert_eq!(t.confusion[2][2], 1);
        assert_eq!(t.confusion[2][0], 1);
        assert_eq!(t.confusion[5][0], 1);
    }
}
