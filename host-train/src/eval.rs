//! Evaluation: top-1 and top-5 error on the centre crop, or averaged over the paper's ten
//! patches (the four corners and the centre, and their mirrors; softmax averaged).

use crate::data::{Augment, ImageSet, Loader, Normalize, Schedule, View};
use crate::net::Net;
use anyhow::{ensure, Result};
use std::sync::Arc;
use tch::{Kind, Tensor};

/// Errors are fractions of the images.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Eval {
    /// Mean cross-entropy of the (averaged) predictions.
    pub loss: f64,
    /// Top-1 error.
    pub top1_error: f64,
    /// Top-5 error (top-k with k the number of classes when there are fewer than 5).
    pub top5_error: f64,
    /// Images evaluated.
    pub images: usize,
}

/// How the loader runs during evaluation.
#[derive(Clone, Copy, Debug)]
pub struct LoaderSettings {
    /// Images per batch.
    pub batch: usize,
    /// Threads.
    pub workers: usize,
    /// Batches ahead.
    pub prefetch: usize,
    /// Show a progress bar.
    pub progress: bool,
}

/// The centre view only.
pub const CENTRE: [View; 1] = [View::Centre];

/// The paper's ten patches.
pub fn ten_patches() -> Vec<View> {
    (0..10).map(View::Patch).collect()
}

/// Evaluates `net` on `set`, averaging the softmax over `views`.
pub fn evaluate(
    net: &Net,
    set: &Arc<ImageSet>,
    norm: &Arc<Normalize>,
    aug: &Arc<Augment>,
    views: &[View],
    loader: LoaderSettings,
) -> Result<Eval> {
    ensure!(!set.is_empty(), "nothing to evaluate: the set is empty");
    ensure!(!views.is_empty(), "no view to evaluate");
    let _no_grad = tch::no_grad_guard();
    let n = set.len();
    let classes = net.arch().classes() as i64;
    let probs = Tensor::zeros([n as i64, classes], (Kind::Float, tch::Device::Cpu));
    let bar = alexnet_host::progress::bar(
        loader.progress,
        (n * views.len()) as u64,
        "evaluating views",
    );
    let s = net.arch().input;
    let device = net.devices()[0];
    for &view in views {
        let batches = Loader::new(
            Arc::clone(set),
            (0..n).collect(),
            Arc::clone(norm),
            Arc::clone(aug),
            Schedule {
                batch_size: loader.batch,
                view,
                seed: 0,
                epoch: 0,
                workers: loader.workers,
                prefetch: loader.prefetch,
            },
        );
        let mut start = 0i64;
        for batch in batches {
            let batch = batch?;
            let b = batch.n as i64;
            let x = Tensor::from_slice(&batch.x)
                .f_reshape([b, s.c as i64, s.h as i64, s.w as i64])?
                .to_device(device);
            let p = net
                .forward(&x, None)?
                .softmax(-1, Kind::Float)
                .to_device(tch::Device::Cpu);
            let mut rows = probs.narrow(0, start, b);
            let _ = rows.f_add_(&p)?;
            start += b;
            bar.inc(batch.n as u64);
        }
        ensure!(
            start == n as i64,
            "the loader delivered {start} of {n} images"
        );
    }
    bar.finish_and_clear();
    let probs = probs / views.len() as f64;
    let labels: Vec<i64> = set.labels.iter().map(|&l| l as i64).collect();
    ensure!(
        labels.iter().all(|&l| l < classes),
        "a label exceeds the net's {classes} classes"
    );
    let y = Tensor::from_slice(&labels);
    let picked = probs.gather(1, &y.unsqueeze(1), false).squeeze_dim(1);
    let loss = -picked
        .clamp_min(1e-12)
        .log()
        .mean(Kind::Double)
        .double_value(&[]);
    let k = classes.min(5);
    let (_, top) = probs.topk(k, 1, true, true);
    let hits = top.eq_tensor(&y.unsqueeze(1));
    let top1 = hits.narrow(1, 0, 1).any_dim(1, false).to_kind(Kind::Double);
    let top5 = hits.any_dim(1, false).to_kind(Kind::Double);
    Ok(Eval {
        loss,
        top1_error: 1.0 - top1.mean(Kind::Double).double_value(&[]),
        top5_error: 1.0 - top5.mean(Kind::Double).double_value(&[]),
        images: n,
    })
}

/// The centre-crop evaluation and, with `ten_patch`, the ten-patch one: what training and
/// `host-train eval` report for each set.
pub fn centre_and_ten_patch(
    net: &Net,
    set: &Arc<ImageSet>,
    norm: &Arc<Normalize>,
    aug: &Arc<Augment>,
    ten_patch: bool,
    loader: LoaderSettings,
) -> Result<(Eval, Option<Eval>)> {
    let centre = evaluate(net, set, norm, aug, &CENTRE, loader)?;
    let patches = if ten_patch {
        Some(evaluate(net, set, norm, aug, &ten_patches(), loader)?)
    } else {
        None
    };
    Ok((centre, patches))
}
