//! The training run: data, model, the SGD loop with its schedule, evaluation, checkpoints,
//! metrics and the export of what the device needs.

use crate::checkpoint::{self, TrainState};
use crate::config::{Config, MeanKind, Parallel, Source};
use crate::data::{self, Augment, ImageSet, Loader, Normalize, Pca, Schedule, View};
use crate::eval::{self, Eval, LoaderSettings};
use crate::metrics::{self, EpochMetrics};
use crate::net::{mix, Net};
use crate::sgd::Sgd;
use alexnet_core::Arch;
use alexnet_host::spec::MeanSpec;
use alexnet_host::{ModelSpec, PreprocessSpec};
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Images held out of Fashion-MNIST's training split to drive the learning-rate schedule
/// (its test split stays unseen until the end).
pub const FASHION_HOLDOUT: usize = 5000;

/// Everything the loop reads.
pub struct Data {
    /// Training images.
    pub train: Arc<ImageSet>,
    /// Validation images (the schedule's signal).
    pub val: Arc<ImageSet>,
    /// Test images, when the source has a split distinct from validation.
    pub test: Option<Arc<ImageSet>>,
    /// Pixel normalization.
    pub norm: Arc<Normalize>,
    /// Training augmentation.
    pub augment: Arc<Augment>,
    /// The preprocessing the exported model carries (the centre view's).
    pub preprocess: PreprocessSpec,
    /// Class names.
    pub classes: Vec<String>,
    /// The labels the exported model carries: the class names when there is one per
    /// output of the net, else the net's own (its profile's data set).
    pub labels: Vec<String>,
}

/// Up to `limit` images spread evenly over the set (0: all).
fn limited(set: ImageSet, limit: usize) -> ImageSet {
    if limit == 0 || limit >= set.len() {
        return set;
    }
    let idx: Vec<usize> = (0..limit).map(|k| k * set.len() / limit).collect();
    set.subset(&idx)
}

/// Loads (or preprocesses and caches) the data a config names and derives the
/// normalization and augmentation from the training set.
pub fn prepare_data(cfg: &Config, out: &Path, progress: bool) -> Result<Data> {
    let profile = cfg.profile()?;
    let arch = profile.arch;
    let d = &cfg.data;
    let (train, val, test) = match d.source {
        Source::FashionMnist => {
            let all = data::fashion::load(&d.dir, data::fashion::Split::Train)?;
            ensure!(
                all.len() > FASHION_HOLDOUT,
                "Fashion-MNIST's training split has only {} images",
                all.len()
            );
            // A fixed split: the last 5000 of a seeded shuffle validate.
            let order = data::loader::shuffled(all.len(), 0x00f4_5410, 0);
            let (fit, hold) = order.split_at(all.len() - FASHION_HOLDOUT);
            let train = all.subset(fit);
            let val = all.subset(hold);
            let test = data::fashion::load(&d.dir, data::fashion::Split::Test)?;
            (train, val, Some(limited(test, d.val_limit)))
        }
        Source::Folder => {
            let cache = d
                .cache_dir
                .clone()
                .unwrap_or_else(|| out.join("..").join("cache"));
            std::fs::create_dir_all(&cache)
                .with_context(|| format!("cannot create the cache folder {}", cache.display()))?;
            let train_dir = d.dir.join("train");
            let val_dir = d.dir.join("val");
            ensure!(
                train_dir.is_dir(),
                "{} has no train/ folder (expected train/<class>/*.jpg)",
                d.dir.display()
            );
            ensure!(
                val_dir.is_dir(),
                "{} has no val/ folder (expected val/<class>/*.jpg)",
                d.dir.display()
            );
            let tag = |split: &str| cache.join(format!("{split}-{}.cache", d.stored_size));
            // Scan both before decoding anything, so a bad val folder fails at once.
            let scan = data::folder::scan(&train_dir)?;
            data::folder::scan_val(&val_dir, &scan.classes)?;
            let (train, report) = data::folder::load_or_build(
                &train_dir,
                &tag("train"),
                d.stored_size,
                None,
                progress,
            )?;
            if let Some(r) = report {
                eprintln!("train images: {r}");
            }
            let (val, report) = data::folder::load_or_build(
                &val_dir,
                &tag("val"),
                d.stored_size,
                Some(&train.classes),
                progress,
            )?;
            if let Some(r) = report {
                eprintln!("val images: {r}");
            }
            (train, val, None)
        }
    };
    let train = limited(train, d.train_limit);
    let val = limited(val, d.val_limit);
    ensure!(
        train.classes.len() <= arch.classes(),
        "the data has {} classes, the {} net only {} outputs",
        train.classes.len(),
        arch.name,
        arch.classes()
    );
    ensure!(!train.is_empty(), "no training images");
    ensure!(!val.is_empty(), "no validation images");
    let pad = cfg.pad();
    let crop = arch.input.h;
    ensure!(
        arch.input.h == arch.input.w,
        "square inputs only ({}x{})",
        arch.input.h,
        arch.input.w
    );
    ensure!(
        train.channels == arch.input.c,
        "the images have {} channel(s), the {} net takes {}",
        train.channels,
        arch.name,
        arch.input.c
    );
    let defaults = profile.preprocess.spec(arch);
    let (norm, preprocess) = match cfg.mean() {
        MeanKind::Arch => {
            let mean = match &defaults.mean {
                MeanSpec::PerChannel(m) => m.clone(),
                MeanSpec::None => vec![0.0; train.channels],
                MeanSpec::PerPixel(_) => bail!("the architecture's default mean is per pixel"),
            };
            let norm = Normalize {
                pixel_scale: defaults.pixel_scale,
                mean,
                std: defaults.std.clone(),
            };
            let mut preprocess = defaults.clone();
            preprocess.resize = train.size as u32;
            (norm, preprocess)
        }
        MeanKind::PerPixel => {
            let norm = Normalize {
                pixel_scale: 1.0,
                mean: Normalize::per_pixel_mean(&train, 1.0, pad),
                std: None,
            };
            let mean = norm.centre_crop_mean(train.channels, train.size, pad, crop);
            let preprocess = PreprocessSpec {
                resize: train.size as u32,
                channel_order: defaults.channel_order,
                pixel_scale: 1.0,
                mean: MeanSpec::PerPixel(mean),
                std: None,
            };
            (norm, preprocess)
        }
    };
    let pca = if train.channels == 3 && d.pca_std > 0.0 {
        Some(Pca::from_set(&train, norm.pixel_scale, 10_000)?)
    } else {
        None
    };
    let augment = Augment {
        crop,
        pad,
        flip: d.flip,
        pca,
        pca_std: d.pca_std,
    };
    let classes = train.classes.clone();
    let labels = if classes.len() == arch.classes() {
        classes.clone()
    } else {
        profile.dataset.labels()
    };
    Ok(Data {
        train: Arc::new(train),
        val: Arc::new(val),
        test: test.map(Arc::new),
        norm: Arc::new(norm),
        augment: Arc::new(augment),
        preprocess,
        classes,
        labels,
    })
}

/// Reads weights for `arch` from a core blob, a safetensors file or a PyTorch checkpoint
/// ([`alexnet_host::weights::load`]: the format is told by the content).
pub fn load_weights(path: &Path, arch: &Arch<'_>) -> Result<ModelSpec> {
    alexnet_host::weights::load(path, Some(arch))
}

/// Options of a run beyond the config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue from the run's latest checkpoint.
    pub resume: bool,
    /// Start from these weights instead of a random initialization.
    pub init_from: Option<PathBuf>,
    /// Show progress bars.
    pub progress: bool,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The state at the end.
    pub state: TrainState,
    /// Final validation, centre crop.
    pub val: Eval,
    /// Final validation, ten patches (when enabled).
    pub val_ten_patch: Option<Eval>,
    /// Test split, centre crop (Fashion-MNIST).
    pub test: Option<Eval>,
    /// Test split, ten patches.
    pub test_ten_patch: Option<Eval>,
    /// The exported f32 blob.
    pub blob: PathBuf,
    /// The exported safetensors.
    pub safetensors: PathBuf,
    /// Seconds spent training (evaluation excluded).
    pub train_seconds: f64,
}

/// A batch on `device`. For a GPU the host tensors are pinned and copied without blocking,
/// so the copy overlaps the previous step's kernels instead of waiting for them.
fn batch_tensors(batch: &data::Batch, arch: &Arch<'_>, device: Device) -> Result<(Tensor, Tensor)> {
    let s = arch.input;
    let x = Tensor::from_slice(&batch.x).f_reshape([
        batch.n as i64,
        s.c as i64,
        s.h as i64,
        s.w as i64,
    ])?;
    let y = Tensor::from_slice(&batch.y);
    if !device.is_cuda() {
        return Ok((x, y));
    }
    let upload = |t: Tensor| -> Result<Tensor> {
        let kind = t.kind();
        Ok(t.f_pin_memory(device)?
            .f_to_device_(device, kind, true, false)?)
    };
    Ok((upload(x)?, upload(y)?))
}

/// The images of an epoch's `order` that rank `rank` of `world` trains on: every `world`-th
/// one, and the same number for every rank (the last `len % world` are left out this epoch),
/// so that all ranks take the same number of steps and meet at every all-reduce.
pub fn rank_share(order: &[usize], rank: usize, world: usize) -> Vec<usize> {
    let world = world.max(1);
    order
        .iter()
        .skip(rank)
        .step_by(world)
        .take(order.len() / world)
        .copied()
        .collect()
}

/// The seed of step `step`'s dropout masks on rank `rank`: its own stream per rank, so the
/// ranks of a data-parallel run draw independent masks over the global batch.
pub fn dropout_seed(seed: u64, step: u64, rank: usize) -> u64 {
    mix(mix(seed ^ 0xd209_0a7e, step), rank as u64)
}

/// The training loss and accuracy of the steps since they were last read. The values stay
/// on the device and are read in one transfer every `log_every` steps, at checkpoints and at
/// the end of an epoch, instead of a sync with the GPU at every step. They are added on the
/// host in step order, so the sums do not depend on when they were read (a resumed run
/// reports what an uninterrupted one does).
#[derive(Default)]
struct Running {
    losses: Vec<Tensor>,
    correct: Vec<Tensor>,
    sizes: Vec<usize>,
    first_step: u64,
}

impl Running {
    fn push(
        &mut self,
        loss: &Tensor,
        logits: &Tensor,
        y: &Tensor,
        n: usize,
        step: u64,
    ) -> Result<()> {
        let _guard = tch::no_grad_guard();
        if self.losses.is_empty() {
            self.first_step = step;
        }
        self.losses.push(loss.detach().f_to_kind(Kind::Float)?);
        self.correct.push(
            logits
                .f_argmax(1, false)?
                .f_eq_tensor(y)?
                .f_sum(Kind::Int64)?,
        );
        self.sizes.push(n);
        Ok(())
    }

    /// Adds the pending steps to the sums; fails if the loss diverged.
    fn settle(&mut self, loss_sum: &mut f64, correct: &mut i64, lr: f64) -> Result<()> {
        if self.losses.is_empty() {
            return Ok(());
        }
        let losses =
            Vec::<f32>::try_from(Tensor::f_stack(&self.losses, 0)?.f_to_device(Device::Cpu)?)?;
        let right =
            Vec::<i64>::try_from(Tensor::f_stack(&self.correct, 0)?.f_to_device(Device::Cpu)?)?;
        for (k, ((&l, &c), &n)) in losses.iter().zip(&right).zip(&self.sizes).enumerate() {
            let l = f64::from(l);
            ensure!(
                l.is_finite(),
                "the loss diverged to {l} at step {} (lr {lr}); lower the learning rate",
                self.first_step + k as u64
            );
            *loss_sum += l * n as f64;
            *correct += c;
        }
        self.losses.clear();
        self.correct.clear();
        self.sizes.clear();
        Ok(())
    }
}

/// Trains as `cfg` says, writing everything under `out`.
pub fn run(cfg: &Config, out: &Path, opts: &RunOptions) -> Result<Summary> {
    cfg.validate()?;
    let arch = cfg.arch()?;
    let t = &cfg.train;
    let devices = crate::device::parse_all(&t.devices)?;
    let (rank, world) = match t.parallel {
        Parallel::Data => (cfg.dist.rank, cfg.dist.world_size.max(1)),
        Parallel::Towers => (0, 1),
    };
    if t.parallel == Parallel::Data {
        ensure!(
            devices.len() == 1,
            "with --parallel data each process drives one device; start one process per GPU \
             (--rank/--world-size) instead of listing {}",
            crate::device::describe(&devices)
        );
        ensure!(
            t.batch_size.is_multiple_of(world),
            "batch_size {} does not divide among {world} ranks",
            t.batch_size
        );
    }
    if let Some(p) = &opts.init_from {
        ensure!(p.exists(), "--init-from {}: no such file", p.display());
    }
    if t.threads > 0 {
        tch::set_num_threads(t.threads as i32);
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    crate::device::prepare(&devices, t.deterministic);
    let me = (rank, world);
    let resume_from = if opts.resume {
        let c = checkpoint::latest(out, me)?;
        ensure!(
            c.is_some(),
            "--resume: {} holds no checkpoint",
            checkpoint::dir(out, rank, world).display()
        );
        c
    } else {
        if checkpoint::latest(out, me)?.is_some() {
            bail!(
                "{} already holds a run; pass --resume to continue it or choose another --out",
                out.display()
            );
        }
        None
    };
    if rank == 0 {
        alexnet_host::atomic::write_atomic(out.join("config.toml"), cfg.to_toml()?.as_bytes())?;
    }

    let data = prepare_data(cfg, out, opts.progress)?;
    let is_main = rank == 0;

    // The model: a checkpoint, given weights, or a fresh initialization.
    let spec = match (&resume_from, &opts.init_from) {
        (Some(c), _) => alexnet_host::safetensors_io::load(&c.weights, arch)?,
        (None, Some(p)) => load_weights(p, arch)?,
        (None, None) => cfg.init().init(arch, t.seed)?,
    };
    let mut net = Net::with_towers(&spec, &devices)?;
    net.set_metadata(data.preprocess.clone(), Some(data.labels.clone()));
    let mut sgd = Sgd::new(&net, t.momentum, t.weight_decay);
    let mut state = TrainState {
        lr: t.lr,
        ..Default::default()
    };
    if let Some(c) = &resume_from {
        sgd.load_state(&net, &c.velocity)?;
        state = c.state.clone();
        if is_main {
            eprintln!(
                "resuming from {} (epoch {}, step {}, lr {})",
                c.path.display(),
                state.epoch,
                state.step,
                state.lr
            );
        }
    }
    let run_id = crate::dist::run_id(cfg.dist.run_id.as_deref());
    let mut sync = crate::dist::connect(
        rank,
        world,
        cfg.dist.rendezvous.as_deref(),
        run_id.as_deref(),
        devices[0],
    )?;

    let workers = cfg.data.workers;
    let eval_loader = LoaderSettings {
        batch: cfg.eval.batch_size,
        workers,
        prefetch: cfg.data.prefetch,
        progress: opts.progress && is_main,
    };
    let eval_aug = Arc::new(Augment {
        pca: None,
        ..(*data.augment).clone()
    });
    let validate = |net: &Net| {
        eval::evaluate(
            net,
            &data.val,
            &data.norm,
            &eval_aug,
            &eval::CENTRE,
            eval_loader,
        )
    };
    let per_rank_batch = t.batch_size / world;
    let total_epochs = t.epochs as u64;
    let mut train_seconds = 0.0;
    let mut stopped_early = false;
    while state.epoch < total_epochs && !stopped_early {
        let epoch = state.epoch;
        let order = rank_share(
            &data::loader::shuffled(data.train.len(), t.seed, epoch),
            rank,
            world,
        );
        let batches_in_epoch = order.len().div_ceil(per_rank_batch) as u64;
        let skip = state.batch_in_epoch as usize * per_rank_batch;
        let loader = Loader::new(
            Arc::clone(&data.train),
            order,
            Arc::clone(&data.norm),
            Arc::clone(&data.augment),
            Schedule {
                batch_size: per_rank_batch,
                view: View::Random,
                seed: mix(t.seed, rank as u64),
                epoch,
                workers,
                prefetch: cfg.data.prefetch,
            },
        )
        .start_at(state.batch_in_epoch as usize);
        let bar = alexnet_host::progress::bar(
            opts.progress && is_main,
            data.train.len() as u64,
            format!("epoch {}/{}", epoch + 1, total_epochs),
        );
        bar.set_position((skip * world) as u64);
        let started = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (
            state.epoch_loss_sum,
            state.epoch_correct as i64,
            state.epoch_seen as usize,
        );
        let seen_before = seen;
        let mut running = Running::default();
        for batch in loader {
            let batch = batch?;
            let (x, y) = batch_tensors(&batch, arch, devices[0])?;
            Sgd::zero_grad(&net);
            let logits = net.forward(&x, Some(dropout_seed(t.seed, state.step, rank)))?;
            let loss = logits.cross_entropy_for_logits(&y);
            loss.backward();
            if let Some(s) = sync.as_mut() {
                let grads: Vec<Tensor> =
                    net.parameters().iter().map(|(_, _, p)| p.grad()).collect();
                s.all_reduce_mean(&grads)?;
            }
            sgd.step(&net, state.lr)?;
            running.push(&loss, &logits, &y, batch.n, state.step)?;
            state.step += 1;
            state.batch_in_epoch += 1;
            seen += batch.n;
            bar.inc((batch.n * world) as u64);
            let checkpoint_now = t.checkpoint_every > 0
                && state.step.is_multiple_of(t.checkpoint_every)
                && state.batch_in_epoch < batches_in_epoch;
            let stop_now = t.max_steps > 0 && state.step >= t.max_steps;
            if checkpoint_now || stop_now || state.step.is_multiple_of(t.log_every.max(1)) {
                running.settle(&mut loss_sum, &mut correct, state.lr)?;
                (state.epoch_loss_sum, state.epoch_correct, state.epoch_seen) =
                    (loss_sum, correct as u64, seen as u64);
                bar.set_message(format!("loss {:.4}", loss_sum / seen as f64));
            }
            if checkpoint_now {
                checkpoint::save(out, me, &net, &sgd, &state, t.keep_checkpoints)?;
            }
            if stop_now {
                stopped_early = state.batch_in_epoch < batches_in_epoch;
                break;
            }
        }
        running.settle(&mut loss_sum, &mut correct, state.lr)?;
        (state.epoch_loss_sum, state.epoch_correct, state.epoch_seen) =
            (loss_sum, correct as u64, seen as u64);
        let seconds = started.elapsed().as_secs_f64();
        train_seconds += seconds;
        bar.finish_and_clear();
        if stopped_early {
            checkpoint::save(out, me, &net, &sgd, &state, t.keep_checkpoints)?;
            if is_main {
                eprintln!(
                    "stopped at step {} (--max-steps), mid-epoch {}",
                    state.step,
                    epoch + 1
                );
            }
            break;
        }
        // End of the epoch: validate, adjust the rate, record, checkpoint.
        let val = validate(&net)?;
        let row = EpochMetrics {
            epoch: epoch + 1,
            step: state.step,
            lr: state.lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_top1_error: 1.0 - correct as f64 / seen.max(1) as f64,
            val_loss: val.loss,
            val_top1_error: val.top1_error,
            val_top5_error: val.top5_error,
            images_per_second: ((seen - seen_before) * world) as f64 / seconds.max(1e-9),
            seconds,
        };
        state.epoch += 1;
        state.batch_in_epoch = 0;
        (state.epoch_loss_sum, state.epoch_correct, state.epoch_seen) = (0.0, 0, 0);
        let improved = state
            .best_val_error
            .is_none_or(|best| val.top1_error < best - t.plateau_threshold);
        if improved {
            state.best_val_error = Some(val.top1_error);
            state.epochs_without_improvement = 0;
        } else {
            state.epochs_without_improvement += 1;
            if state.epochs_without_improvement >= t.plateau_patience && state.lr > t.min_lr {
                state.lr = (state.lr * t.lr_factor).max(t.min_lr);
                state.epochs_without_improvement = 0;
                if is_main {
                    eprintln!(
                        "validation error stopped improving: learning rate now {}",
                        state.lr
                    );
                }
            }
        }
        if is_main {
            eprintln!(
                "epoch {:>3}: train loss {:.4}, top-1 err {:5.2}% | val loss {:.4}, top-1 err {:5.2}%, top-5 err {:5.2}% | {:.0} img/s, {:.1} s",
                row.epoch,
                row.train_loss,
                100.0 * row.train_top1_error,
                row.val_loss,
                100.0 * row.val_top1_error,
                100.0 * row.val_top5_error,
                row.images_per_second,
                row.seconds
            );
            state.history.push(row);
            metrics::write_csv(&state.history, &out.join("metrics.csv"))?;
            metrics::plot(&state.history, out)?;
        } else {
            state.history.push(row);
        }
        checkpoint::save(out, me, &net, &sgd, &state, t.keep_checkpoints)?;
        if t.max_steps > 0 && state.step >= t.max_steps {
            break;
        }
    }

    // Final evaluation and export.
    let ten = cfg.eval.ten_patch;
    let (val, val_ten_patch) =
        eval::centre_and_ten_patch(&net, &data.val, &data.norm, &eval_aug, ten, eval_loader)?;
    let (test, test_ten_patch) = match &data.test {
        Some(set) => {
            let (c, p) =
                eval::centre_and_ten_patch(&net, set, &data.norm, &eval_aug, ten, eval_loader)?;
            (Some(c), p)
        }
        None => (None, None),
    };
    let (blob, safetensors) = export(&net, out)?;
    Ok(Summary {
        state,
        val,
        val_ten_patch,
        test,
        test_ten_patch,
        blob,
        safetensors,
        train_seconds,
    })
}

/// Writes `model.blob` (the core's f32 format, with the training preprocessing and the
/// labels) and `model.safetensors` (what `quantize` reads) into `out`.
pub fn export(net: &Net, out: &Path) -> Result<(PathBuf, PathBuf)> {
    let spec = net.to_spec()?;
    let blob = out.join("model.blob");
    alexnet_host::atomic::write_atomic(&blob, &spec.to_blob()?)?;
    let safetensors = out.join("model.safetensors");
    alexnet_host::safetensors_io::save(&spec, &safetensors)?;
    Ok((blob, safetensors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alexnet_core::builtin::{MICRO, PAPER};

    /// Every rank gets the same number of images, none twice; at most `world - 1` wait for
    /// the next epoch. (Sharded by `skip(rank).step_by(world)` alone, 10 images over 4 ranks
    /// in batches of 2 gave rank 0 two steps and rank 3 one.)
    #[test]
    fn ranks_share_an_epoch_equally() {
        for len in 0..40 {
            let order: Vec<usize> = (0..len).rev().collect();
            for world in 1..6 {
                let shares: Vec<Vec<usize>> =
                    (0..world).map(|r| rank_share(&order, r, world)).collect();
                let mut all: Vec<usize> = shares.concat();
                assert!(
                    shares.iter().all(|s| s.len() == len / world),
                    "{len} over {world}"
                );
                all.sort();
                all.dedup();
                assert_eq!(all.len(), len / world * world, "an image twice");
            }
        }
    }

    /// Ranks draw their own dropout masks (before, every rank used the step's seed alone, so
    /// the masks repeated across the global batch), and a rank's stream is fixed by the step.
    #[test]
    fn ranks_draw_their_own_dropout() -> Result<()> {
        assert_eq!(dropout_seed(3, 10, 1), dropout_seed(3, 10, 1));
        let net = crate::Net::from_spec(&alexnet_host::init::paper_init(&MICRO, 1)?, Device::Cpu)?;
        let x = Tensor::ones([4, 1, 28, 28], tch::kind::FLOAT_CPU);
        let _guard = tch::no_grad_guard();
        let logits: Vec<Tensor> = (0..2)
            .map(|rank| net.forward(&x, Some(dropout_seed(3, 10, rank))))
            .collect::<Result<_>>()?;
        assert!(!logits[0].equal(&logits[1]), "two ranks, one mask");
        Ok(())
    }

    #[test]
    fn weights_load_from_blob_safetensors_and_pth() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let pth = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/host/tests/data/micro.pth");
        let from_pth = load_weights(&pth, &MICRO)?;
        let st = dir.path().join("w.safetensors");
        alexnet_host::safetensors_io::save(&from_pth, &st)?;
        let blob = dir.path().join("w.blob");
        alexnet_host::atomic::write_atomic(&blob, &from_pth.to_blob()?)?;
        assert_eq!(load_weights(&st, &MICRO)?.params, from_pth.params);
        assert_eq!(load_weights(&blob, &MICRO)?.params, from_pth.params);
        let err = load_weights(&blob, &PAPER).unwrap_err();
        assert!(format!("{err:#}").contains("micro"), "{err:#}");
        Ok(())
    }
}
