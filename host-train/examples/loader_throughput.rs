//! Throughput of the data pipeline on an image folder (`<folder>/<class>/*.jpg|png`):
//! (a) the one-time preprocessing pass (decode, shorter side to 256, centre crop) and
//! (b) the loader delivering random 224x224 crops + flips + PCA colour noise + per-pixel
//! mean normalization from the cached set, both in images/s and per core.
//!
//! ```sh
//! cargo run --release -p host-train --example loader_throughput -- <folder> [--workers N]
//!     [--size 256] [--crop 224] [--batch 128] [--seconds 5]
//! ```
//! `examples/loader_pil.py` does the same work with PIL (+ torchvision) for comparison.

use anyhow::{bail, Context, Result};
use host_train::data::{cache, folder, loader, Augment, Loader, Normalize, Pca, Schedule, View};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

struct Args {
    dir: PathBuf,
    workers: usize,
    size: usize,
    crop: usize,
    batch: usize,
    seconds: f64,
}

fn parse() -> Result<Args> {
    let mut args = Args {
        dir: PathBuf::new(),
        workers: 1,
        size: 256,
        crop: 224,
        batch: 128,
        seconds: 5.0,
    };
    let mut dir = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<String> {
            it.next().with_context(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--workers" => args.workers = value("--workers")?.parse()?,
            "--size" => args.size = value("--size")?.parse()?,
            "--crop" => args.crop = value("--crop")?.parse()?,
            "--batch" => args.batch = value("--batch")?.parse()?,
            "--seconds" => args.seconds = value("--seconds")?.parse()?,
            "-h" | "--help" => {
                println!(
                    "loader_throughput <folder> [--workers N] [--size 256] [--crop 224] \
                     [--batch 128] [--seconds 5]"
                );
                std::process::exit(0);
            }
            s if s.starts_with('-') => bail!("unknown option {s}"),
            s => dir = Some(PathBuf::from(s)),
        }
    }
    args.dir = dir.context("usage: loader_throughput <folder> [--workers N]")?;
    if args.workers == 0 {
        args.workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    }
    Ok(args)
}

fn main() -> Result<()> {
    let a = parse()?;
    let cores = a.workers;
    println!(
        "folder {}, {} worker(s), stored {}x{}, crops {}x{}, batch {}",
        a.dir.display(),
        cores,
        a.size,
        a.size,
        a.crop,
        a.crop,
        a.batch
    );

    // (a) The one-time preprocessing pass, on `workers` rayon threads.
    let scan = folder::scan(&a.dir)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(cores).build()?;
    let t = Instant::now();
    let (set, report) = pool.install(|| folder::preprocess(&scan, a.size, true))?;
    let prep_s = t.elapsed().as_secs_f64();
    let rate = set.len() as f64 / prep_s;
    println!("{report}");
    println!(
        "(a) preprocessing: {} images in {prep_s:.2} s = {rate:.1} images/s, {:.1} images/s per core",
        set.len(),
        rate / cores as f64
    );
    let tmp = std::env::temp_dir().join(format!("loader-throughput-{}.cache", std::process::id()));
    let t = Instant::now();
    cache::save(&set, 0, &tmp)?;
    let save_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (set, _) = cache::load(&tmp)?;
    let load_s = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&tmp);
    println!(
        "    cache: {:.1} MB, saved in {save_s:.2} s, loaded in {load_s:.2} s",
        set.pixels.len() as f64 / 1e6
    );

    // (b) The loader: random crops + flips + PCA noise + per-pixel mean, from memory.
    let set = Arc::new(set);
    let norm = Arc::new(Normalize {
        pixel_scale: 1.0,
        mean: Normalize::per_pixel_mean(&set, 1.0, 0),
        std: None,
    });
    let aug = Arc::new(Augment {
        crop: a.crop,
        pad: 0,
        flip: true,
        pca: Some(Pca::from_set(&set, 1.0, 1000)?),
        pca_std: 0.1,
    });
    let mut images = 0usize;
    let mut epoch = 0;
    let t = Instant::now();
    while t.elapsed().as_secs_f64() < a.seconds || epoch == 0 {
        let order = loader::shuffled(set.len(), 0, epoch);
        let l = Loader::new(
            set.clone(),
            order,
            norm.clone(),
            aug.clone(),
            Schedule {
                batch_size: a.batch,
                view: View::Random,
                seed: 0,
                epoch,
                workers: cores,
                prefetch: 4,
            },
        );
        for batch in l {
            let batch = batch?;
            images += batch.n;
            std::hint::black_box(&batch.x);
        }
        epoch += 1;
    }
    let load_s = t.elapsed().as_secs_f64();
    let rate = images as f64 / load_s;
    println!(
        "(b) loader: {images} images ({epoch} epoch(s)) in {load_s:.2} s = {rate:.1} images/s, \
         {:.1} images/s per core",
        rate / cores as f64
    );
    Ok(())
}
