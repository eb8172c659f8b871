//! Training on real Fashion-MNIST on the CPU: a short deterministic run must lower the loss
//! and beat chance by a wide margin; a run stopped part-way and resumed must match an
//! uninterrupted one step for step; bad input fails before any work.
//!
//! One test per concern, all in this file and run one after another (libtorch's thread pool
//! is process-wide, and the figures below are for 2 threads).

use anyhow::Result;
use host_train::config::Config;

use host_train::train::{self, RunOptions};
use std::path::Path;
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

fn small_config() -> Config {
    let mut c = Config {
        arch: "micro".into(),
        ..Config::default()
    };
    c.data.train_limit = 3000;
    c.data.val_limit = 1000;
    c.data.workers = 2;
    c.train.epochs = 2;
    c.train.batch_size = 50;
    c.train.lr = 0.02;
    c.train.threads = 2;
    c.train.seed = 7;
    c.eval.ten_patch = false;
    c
}

fn weights(dir: &Path) -> Result<alexnet_host::ModelSpec> {
    alexnet_host::safetensors_io::load(dir.join("model.safetensors"), &alexnet_core::builtin::MICRO)
}

#[test]
fn short_training_learns_fashion_mnist() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !alexnet_host::idx::fashion_mnist_installed() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("run");
    let cfg = small_config();
    let s = train::run(&cfg, &out, &RunOptions::default())?;
    let h = &s.state.history;
    assert_eq!(h.len(), 2);
    assert_eq!(s.state.step, 2 * 3000 / 50);
    eprintln!(
        "losses {:.3} -> {:.3}; val error {:.1}%, test error {:.1}%",
        h[0].train_loss,
        h[1].train_loss,
        100.0 * s.val.top1_error,
        100.0 * s.test.unwrap().top1_error
    );
    assert!(h[1].train_loss < h[0].train_loss, "the loss did not fall");
    assert!(h[0].train_loss < 2.302, "no progress in the first epoch");
    // Chance is 90% error on ten classes.
    let test = s.test.expect("Fashion-MNIST has a test split");
    assert!(
        test.top1_error < 0.5,
        "test error {} (chance: 0.9)",
        test.top1_error
    );
    assert!(test.top5_error < test.top1_error);
    // Everything a run promises is there.
    for f in [
        "metrics.csv",
        "loss.png",
        "error.png",
        "model.blob",
        "model.safetensors",
        "config.toml",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(out.join("metrics.csv"))?;
    assert_eq!(csv.lines().count(), 3);
    // The exported blob runs in the core and agrees with the exported weights.
    let blob = alexnet_host::BlobFile::read(&s.blob)?;
    let model = blob.model()?;
    assert_eq!(model.labels().map(|l| l.len()), Some(10));
    assert_eq!(
        alexnet_host::ModelSpec::from_model(&model).params,
        weights(&out)?.params
    );
    Ok(())
}

#[test]
fn resumed_training_matches_uninterrupted_training() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !alexnet_host::idx::fashion_mnist_installed() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let mut cfg = small_config();
    cfg.data.train_limit = 1000;
    cfg.data.val_limit = 200;
    cfg.train.checkpoint_every = 7;
    // Uninterrupted: 2 epochs of 20 steps.
    let whole = dir.path().join("whole");
    let a = train::run(&cfg, &whole, &RunOptions::default())?;
    assert_eq!(a.state.step, 40);
    // Interrupted mid-epoch at step 13 (a different worker count too), then resumed twice:
    // once to the end of epoch 1 plus a bit, once to the end.
    let parts = dir.path().join("parts");
    let mut first = cfg.clone();
    first.train.max_steps = 13;
    first.data.workers = 1;
    let b = train::run(&first, &parts, &RunOptions::default())?;
    assert_eq!(
        (b.state.step, b.state.epoch, b.state.batch_in_epoch),
        (13, 0, 13)
    );
    let mut second = cfg.clone();
    second.train.max_steps = 27;
    train::run(
        &second,
        &parts,
        &RunOptions {
            resume: true,
            ..Default::default()
        },
    )?;
    let c = train::run(
        &cfg,
        &parts,
        &RunOptions {
            resume: true,
            ..Default::default()
        },
    )?;
    assert_eq!(c.state.step, 40);
    // Starting again in a folder that holds a run, without --resume, is refused.
    let err = train::run(&cfg, &parts, &RunOptions::default()).expect_err("must refuse");
    assert!(
        format!("{err:#}").contains("already holds a run"),
        "{err:#}"
    );
    assert_eq!(
        weights(&parts)?.params,
        weights(&whole)?.params,
        "weights differ"
    );
    // Every figure of every epoch matches, throughput and time aside.
    let strip = |m: &host_train::metrics::EpochMetrics| host_train::metrics::EpochMetrics {
        images_per_second: 0.0,
        seconds: 0.0,
        ..m.clone()
    };
    assert_eq!(a.state.history.len(), c.state.history.len());
    for (x, y) in a.state.history.iter().zip(&c.state.history) {
        assert_eq!(strip(x), strip(y));
    }
    // The optimizer state matches too.
    let mut va = host_train::checkpoint::latest(&whole, (0, 1))?
        .unwrap()
        .velocity;
    let mut vc = host_train::checkpoint::latest(&parts, (0, 1))?
        .unwrap()
        .velocity;
    va.sort_by(|a, b| a.0.cmp(&b.0));
    vc.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(va.len(), 16);
    for ((na, ta), (nc, tc)) in va.iter().zip(&vc) {
        assert_eq!(na, nc);
        assert!(ta.equal(tc), "velocity of {na} differs");
    }
    Ok(())
}

#[test]
fn bad_input_fails_before_any_work() -> Result<()> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir()?;
    let run = |cfg: &Config, out: &str| {
        let out = dir.path().join(out);
        let err = train::run(cfg, &out, &RunOptions::default()).expect_err("must fail");
        assert!(!out.join("checkpoints").exists(), "work started");
        format!("{err:#}")
    };
    let mut cfg = small_config();
    cfg.train.devices = vec!["cuda:0".into()];
    if !tch::Cuda::is_available() {
        assert!(run(&cfg, "gpu").contains("CUDA GPU"));
    }
    cfg.train.devices = vec!["cuda:99".into()];
    let msg = run(&cfg, "gpu99");
    assert!(msg.contains("cuda:99") || msg.contains("CUDA"), "{msg}");
    let mut cfg = small_config();
    cfg.data.dir = dir.path().join("nowhere");
    assert!(run(&cfg, "nodata").contains("nowhere"));
    // A class folder without images, and a val class the train set lacks.
    let root = dir.path().join("imgs");
    for (split, class) in [("train", "cat"), ("train", "dog"), ("val", "cat")] {
        std::fs::create_dir_all(root.join(split).join(class))?;
    }
    let png = image::RgbImage::from_pixel(40, 30, image::Rgb([200, 10, 10]));
    png.save(root.join("train/cat/a.png"))?;
    png.save(root.join("val/cat/a.png"))?;
    let mut cfg = small_config();
    cfg.arch = "paper".into();
    cfg.data.source = host_train::config::Source::Folder;
    cfg.data.dir = root.clone();
    let msg = run(&cfg, "empty-class");
    assert!(msg.contains("dog"), "{msg}");
    png.save(root.join("train/dog/b.png"))?;
    std::fs::create_dir_all(root.join("val/bird"))?;
    png.save(root.join("val/bird/c.png"))?;
    let msg = run(&cfg, "unknown-val-class");
    assert!(msg.contains("bird"), "{msg}");
    // A config key that does not exist.
    let err = Config::from_toml("[train]\nepoch = 3\n").unwrap_err();
    assert!(format!("{err:#}").contains("epoch"));
    Ok(())
}
