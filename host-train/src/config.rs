//! The training configuration: the paper's recipe as defaults, a TOML file over them, and
//! command-line flags over both. Unknown keys are errors, so a typo never trains silently
//! with a default.

use alexnet_host::profile::Profile;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the training images come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Fashion-MNIST IDX files (the small nets).
    FashionMnist,
    /// ImageNet-style folders: `<dir>/train/<class>/*.jpg|png` and `<dir>/val/<class>/...`.
    Folder,
}

/// What is subtracted from the pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeanKind {
    /// The paper's: the mean image over the training set.
    PerPixel,
    /// The architecture's default preprocessing (per-channel mean, and std where it has one).
    Arch,
}

/// Initial weights (`paper` or `kaiming` in the TOML).
pub use alexnet_host::init::Initializer as Init;

/// How several devices share the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Parallel {
    /// The paper's model parallelism: one tower per device.
    Towers,
    /// One replica per process and GPU, gradients all-reduced through NCCL.
    Data,
}

/// The data section.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Source kind.
    pub source: Source,
    /// Fashion-MNIST folder, or the folder holding `train/` and `val/`.
    pub dir: PathBuf,
    /// Where the preprocessed image cache goes (default: `<out>/../cache`).
    pub cache_dir: Option<PathBuf>,
    /// Side of the cached images (the paper's 256).
    pub stored_size: usize,
    /// Zero padding around stored images before random crops (default: 2 for 28x28 sources,
    /// 0 otherwise).
    pub pad: Option<usize>,
    /// Loader threads (0: one per core).
    pub workers: usize,
    /// Batches prepared ahead.
    pub prefetch: usize,
    /// Use only the first N training images, spread over the set (0: all).
    pub train_limit: usize,
    /// Use only N validation images (0: all).
    pub val_limit: usize,
    /// Random horizontal flips.
    pub flip: bool,
    /// Standard deviation of the PCA colour noise's alphas (0: off; RGB only).
    pub pca_std: f32,
    /// Mean subtraction (default: per-pixel for folders, the architecture's for Fashion-MNIST).
    pub mean: Option<MeanKind>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: Source::FashionMnist,
            dir: PathBuf::from(alexnet_host::idx::FASHION_MNIST_DIR),
            cache_dir: None,
            stored_size: 256,
            pad: None,
            workers: 0,
            prefetch: 8,
            train_limit: 0,
            val_limit: 0,
            flip: true,
            pca_std: 0.1,
            mean: None,
        }
    }
}

/// The optimization section.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Epochs.
    pub epochs: usize,
    /// Images per step (over all data-parallel ranks).
    pub batch_size: usize,
    /// Initial learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Factor on the learning rate when validation error stops improving.
    pub lr_factor: f64,
    /// Epochs without improvement of the validation top-1 error before the rate drops.
    pub plateau_patience: usize,
    /// Improvement smaller than this (in error fraction) counts as none.
    pub plateau_threshold: f64,
    /// No drop below this rate.
    pub min_lr: f64,
    /// Initialization (default: the net's profile's: the paper's for the ImageNet nets,
    /// Kaiming for micro, which does not start learning from the paper's N(0, 0.01)).
    pub init: Option<Init>,
    /// Seed of everything random: weights, data order, augmentation, dropout.
    pub seed: u64,
    /// Stop after this many steps in all (0: no limit).
    pub max_steps: u64,
    /// Devices, one per tower with `parallel = "towers"` (`cpu`, `cuda`, `cuda:N`).
    pub devices: Vec<String>,
    /// How devices share the work.
    pub parallel: Parallel,
    /// libtorch intra-op threads on the CPU (0: libtorch's default).
    pub threads: usize,
    /// Write a checkpoint every N steps as well as after every epoch (0: epochs only).
    pub checkpoint_every: u64,
    /// Checkpoints kept (oldest deleted first); at least 1.
    pub keep_checkpoints: usize,
    /// Read the training loss and accuracy back from the device every N steps (they
    /// accumulate there in between; a diverged loss is reported at the next read).
    pub log_every: u64,
    /// Reproducible GPU runs: deterministic cuDNN algorithms, no cuDNN autotuning, cuBLAS's
    /// fixed workspace. An exact `--resume` on CUDA needs it; it costs speed (measure with
    /// `host-train bench --deterministic`). The CPU is deterministic either way.
    pub deterministic: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 90,
            batch_size: 128,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
            lr_factor: 0.1,
            plateau_patience: 2,
            plateau_threshold: 1e-3,
            min_lr: 1e-5,
            init: None,
            seed: 0,
            max_steps: 0,
            devices: vec!["cpu".into()],
            parallel: Parallel::Towers,
            threads: 0,
            checkpoint_every: 0,
            keep_checkpoints: 2,
            log_every: 20,
            deterministic: false,
        }
    }
}

/// The evaluation section.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Also evaluate with the paper's ten patches (corners and centre, and their mirrors).
    pub ten_patch: bool,
    /// Images per evaluation batch.
    pub batch_size: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            ten_patch: true,
            batch_size: 256,
        }
    }
}

/// The data-parallel section (NCCL).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistConfig {
    /// This process's rank.
    pub rank: usize,
    /// Processes in all (over all nodes).
    pub world_size: usize,
    /// Where ranks meet: `file:///shared/path` or `tcp://host:port` (rank 0 listens).
    pub rendezvous: Option<String>,
    /// The run's id, the same for every rank and new for every launch (a file rendezvous
    /// needs it; default: the launcher's `SLURM_JOB_ID` or `TORCHELASTIC_RUN_ID`).
    pub run_id: Option<String>,
}

/// Everything a run needs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Architecture (paper, caffe, torchvision, micro).
    pub arch: String,
    /// Data.
    pub data: DataConfig,
    /// Optimization.
    pub train: TrainConfig,
    /// Evaluation.
    pub eval: EvalConfig,
    /// Data parallelism.
    pub dist: DistConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            arch: "micro".into(),
            data: DataConfig::default(),
            train: TrainConfig::default(),
            eval: EvalConfig::default(),
            dist: DistConfig::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("in config {}", path.display()))
    }

    /// Parses TOML over the defaults.
    pub fn from_toml(text: &str) -> Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// The configuration as TOML (written beside every run, so it can be repeated).
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// The architecture's profile: its descriptor and host-side facts.
    pub fn profile(&self) -> Result<&'static Profile> {
        alexnet_host::profile::by_name(&self.arch)
    }

    /// The architecture descriptor.
    pub fn arch(&self) -> Result<&'static alexnet_core::Arch<'static>> {
        Ok(self.profile()?.arch)
    }

    /// Checks what can be checked before any work starts.
    pub fn validate(&self) -> Result<()> {
        let arch = self.arch()?;
        let t = &self.train;
        ensure!(t.epochs > 0 || t.max_steps > 0, "epochs must be at least 1");
        ensure!(t.batch_size > 0, "batch_size must be at least 1");
        ensure!(
            t.lr > 0.0 && t.lr.is_finite(),
            "lr must be positive, not {}",
            t.lr
        );
        ensure!(
            (0.0..1.0).contains(&t.momentum),
            "momentum must be in [0, 1), not {}",
            t.momentum
        );
        ensure!(t.weight_decay >= 0.0, "weight_decay must not be negative");
        ensure!(
            t.lr_factor > 0.0 && t.lr_factor <= 1.0,
            "lr_factor must be in (0, 1]"
        );
        ensure!(
            t.keep_checkpoints > 0,
            "keep_checkpoints must be at least 1"
        );
        ensure!(
            !t.devices.is_empty(),
            "devices must name at least one device"
        );
        ensure!(
            self.eval.batch_size > 0,
            "eval.batch_size must be at least 1"
        );
        ensure!(self.data.prefetch > 0, "data.prefetch must be at least 1");
        let d = &self.data;
        ensure!(
            d.pca_std >= 0.0 && d.pca_std.is_finite(),
            "data.pca_std must not be negative"
        );
        match d.source {
            Source::FashionMnist => ensure!(
                arch.input.c == 1 && arch.input.h <= 28 + 2 * self.pad(),
                "Fashion-MNIST (1x28x28) cannot feed the {} net ({}x{}x{}); use a folder source",
                arch.name,
                arch.input.c,
                arch.input.h,
                arch.input.w
            ),
            Source::Folder => {
                ensure!(
                    arch.input.c == 3,
                    "image folders are RGB; the {} net takes {} channel(s)",
                    arch.name,
                    arch.input.c
                );
                ensure!(
                    d.stored_size + 2 * self.pad() >= arch.input.h,
                    "data.stored_size {} is smaller than the {} net's input {}",
                    d.stored_size,
                    arch.name,
                    arch.input.h
                );
            }
        }
        if self.train.parallel == Parallel::Data {
            let dist = &self.dist;
            ensure!(dist.world_size >= 1, "--world-size must be at least 1");
            ensure!(
                dist.rank < dist.world_size,
                "--rank {} is not below --world-size {}",
                dist.rank,
                dist.world_size
            );
            if dist.world_size > 1 && dist.rendezvous.is_none() {
                bail!("data parallelism over several processes needs --rendezvous file:///path or tcp://host:port");
            }
        }
        Ok(())
    }

    /// The initialization in effect.
    pub fn init(&self) -> Init {
        self.train
            .init
            .unwrap_or_else(|| self.profile().map_or(Init::Kaiming, |p| p.init))
    }

    /// The zero padding around stored images.
    pub fn pad(&self) -> usize {
        self.data.pad.unwrap_or(match self.data.source {
            Source::FashionMnist => 2,
            Source::Folder => 0,
        })
    }

    /// The mean subtraction in effect.
    pub fn mean(&self) -> MeanKind {
        self.data.mean.unwrap_or(match self.data.source {
            Source::FashionMnist => MeanKind::Arch,
            Source::Folder => MeanKind::PerPixel,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers_recipe() {
        let c = Config::default();
        assert_eq!(c.train.batch_size, 128);
        assert_eq!(c.train.momentum, 0.9);
        assert_eq!(c.train.weight_decay, 5e-4);
        assert_eq!(c.train.lr, 0.01);
        assert_eq!(c.train.lr_factor, 0.1);
        assert_eq!(c.data.pca_std, 0.1);
        c.validate().unwrap();
        assert_eq!(c.init(), Init::Kaiming, "micro");
        let paper = Config {
            arch: "paper".into(),
            ..Config::default()
        };
        assert_eq!(paper.init(), Init::Paper);
    }

    #[test]
    fn toml_overrides_and_round_trips() {
        let c = Config::from_toml("arch = \"micro\"\n[train]\nepochs = 3\nlr = 0.05\n").unwrap();
        assert_eq!((c.train.epochs, c.train.lr), (3, 0.05));
        assert_eq!(c.train.batch_size, 128);
        let again = Config::from_toml(&c.to_toml().unwrap()).unwrap();
        assert_eq!(again.train.epochs, 3);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::from_toml("[train]\nlearning_rate = 0.1\n").unwrap_err();
        assert!(format!("{err:#}").contains("learning_rate"), "{err:#}");
        let err = Config::from_toml("[trian]\n").unwrap_err();
        assert!(format!("{err:#}").contains("trian"), "{err:#}");
    }

    #[test]
    fn bad_values_are_named() {
        let c = Config {
            arch: "resnet".into(),
            ..Config::default()
        };
        assert!(format!("{:#}", c.validate().unwrap_err()).contains("resnet"));
        let c = Config {
            arch: "paper".into(),
            ..Config::default()
        };
        assert!(format!("{:#}", c.validate().unwrap_err()).contains("Fashion-MNIST"));
        let mut c = Config::default();
        c.train.momentum = 1.5;
        assert!(format!("{:#}", c.validate().unwrap_err()).contains("momentum"));
    }
}
