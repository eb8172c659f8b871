//! Checkpoints: the weights (safetensors, the names `quantize` reads), the optimizer's
//! velocity, and the training state (epoch, step, rate, plateau tracker, metrics). Every
//! random draw of a run is a function of the seed and the step or epoch, so this is all an
//! exact resume needs.
//!
//! Crash safety: a checkpoint is written into a temporary folder, each file fsynced, the
//! folder renamed into place and its parent fsynced; only then is `latest` (written with
//! [`alexnet_host::atomic::write_atomic`]) pointed at it. A crash at any moment leaves
//! `latest` naming a complete checkpoint.

use crate::metrics::EpochMetrics;
use crate::net::Net;
use crate::sgd::Sgd;
use alexnet_host::atomic::{sync_dir, sync_file, write_atomic, TMP_SUFFIX};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Where a run is in its schedule.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: u64,
    /// Steps taken in all.
    pub step: u64,
    /// Batches of the current epoch already taken.
    pub batch_in_epoch: u64,
    /// The current epoch's running training figures (so a mid-epoch resume reports the
    /// whole epoch): summed loss, correct predictions, images.
    pub epoch_loss_sum: f64,
    /// See `epoch_loss_sum`.
    pub epoch_correct: u64,
    /// See `epoch_loss_sum`.
    pub epoch_seen: u64,
    /// Current learning rate.
    pub lr: f64,
    /// Best validation top-1 error so far (the plateau tracker).
    pub best_val_error: Option<f64>,
    /// Epochs since it last improved.
    pub epochs_without_improvement: usize,
    /// One row per completed epoch.
    pub history: Vec<EpochMetrics>,
}

const WEIGHTS: &str = "weights.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const STATE: &str = "state.toml";
const LATEST: &str = "latest";

/// The checkpoint folder of rank `rank` of `world`: `<out>/checkpoints` for a single
/// process, `<out>/checkpoints/rank-<r>` for each rank of a data-parallel run, so that every
/// rank can resume (its shard of the running figures is its own) and no two ranks write,
/// point `latest` at or prune the same folder.
pub fn dir(out: &Path, rank: usize, world: usize) -> PathBuf {
    let root = out.join("checkpoints");
    if world > 1 {
        root.join(format!("rank-{rank}"))
    } else {
        root
    }
}

/// Saves a checkpoint of `net`, `sgd` and `state` under [`dir`]`/step-<N>`, then deletes
/// all but the newest `keep`.
pub fn save(
    out: &Path,
    (rank, world): (usize, usize),
    net: &Net,
    sgd: &Sgd,
    state: &TrainState,
    keep: usize,
) -> Result<PathBuf> {
    let root = dir(out, rank, world);
    fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let name = format!("step-{:09}", state.step);
    let tmp = root.join(format!(".{name}{TMP_SUFFIX}"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let weights = tmp.join(WEIGHTS);
    alexnet_host::safetensors_io::save(&net.to_spec()?, &weights)?;
    let optimizer = tmp.join(OPTIMIZER);
    let velocity = sgd.state(net);
    Tensor::write_safetensors(&velocity, &optimizer)
        .with_context(|| format!("cannot write {}", optimizer.display()))?;
    sync_file(&optimizer)?;
    let state_path = tmp.join(STATE);
    write_atomic(&state_path, toml::to_string(state)?.as_bytes())?;
    sync_dir(&tmp)?;
    let final_dir = root.join(&name);
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir)?;
    }
    fs::rename(&tmp, &final_dir)
        .with_context(|| format!("cannot move {} into place", final_dir.display()))?;
    sync_dir(&root)?;
    write_atomic(root.join(LATEST), name.as_bytes())?;
    prune(&root, &name, keep)?;
    Ok(final_dir)
}

/// Deletes complete checkpoints beyond the newest `keep` (never `current`) and what killed
/// runs left: temporary checkpoint folders and temporary files of atomic writes (the folder has
/// one writer, this rank, and it is not writing now).
fn prune(root: &Path, current: &str, keep: usize) -> Result<()> {
    let mut names: Vec<String> = fs::read_dir(root)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for n in names
        .iter()
        .filter(|n| n.starts_with('.') && n.ends_with(TMP_SUFFIX))
    {
        let p = root.join(n);
        let _ = if p.is_dir() {
            fs::remove_dir_all(p)
        } else {
            fs::remove_file(p)
        };
    }
    let complete: Vec<&String> = names.iter().filter(|n| n.starts_with("step-")).collect();
    let excess = complete.len().saturating_sub(keep.max(1));
    for n in complete.into_iter().take(excess) {
        if n != current {
            fs::remove_dir_all(root.join(n))
                .with_context(|| format!("cannot delete old checkpoint {n}"))?;
        }
    }
    Ok(())
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// Its folder.
    pub path: PathBuf,
    /// The weights file (safetensors, canonical names).
    pub weights: PathBuf,
    /// The velocity by canonical name.
    pub velocity: Vec<(String, Tensor)>,
    /// The state.
    pub state: TrainState,
}

/// The checkpoint `latest` names in rank `rank` of `world`'s folder, if there is one.
pub fn latest(out: &Path, (rank, world): (usize, usize)) -> Result<Option<Checkpoint>> {
    let root = dir(out, rank, world);
    let pointer = root.join(LATEST);
    if !pointer.exists() {
        return Ok(None);
    }
    let name = fs::read_to_string(&pointer)
        .with_context(|| format!("cannot read {}", pointer.display()))?;
    let name = name.trim();
    if !name.starts_with("step-") || name.contains('/') {
        bail!("{} names {name:?}, not a checkpoint", pointer.display());
    }
    load(&root.join(name)).map(Some)
}

/// Loads the checkpoint in `path`.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let weights = path.join(WEIGHTS);
    if !weights.exists() {
        bail!("{} is not a checkpoint (no {WEIGHTS})", path.display());
    }
    let velocity = Tensor::read_safetensors(path.join(OPTIMIZER))
        .with_context(|| format!("cannot read the optimizer state in {}", path.display()))?;
    let state_path = path.join(STATE);
    let text = fs::read_to_string(&state_path)
        .with_context(|| format!("cannot read {}", state_path.display()))?;
    let state: TrainState =
        toml::from_str(&text).with_context(|| format!("{} is malformed", state_path.display()))?;
    Ok(Checkpoint {
        path: path.to_path_buf(),
        weights,
        velocity,
        state,
    })
}
