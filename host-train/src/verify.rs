//! Checks that the tch network computes the descriptor's net, shared by the tests (on the
//! CPU) and by `host-train verify` (on whatever device a machine has, CUDA included).
//!
//! * [`tch_vs_core`]: the same weights and input through tch and through the core.
//! * [`towers_vs_one`]: two towers on one device against one tower, logits and gradients.

use crate::net::to_vec;
use crate::Net;
use alexnet_core::Arch;
use alexnet_host::{init::paper_init, BlobFile};
use anyhow::{ensure, Result};
use rand::{Rng, SeedableRng};
use tch::{Device, Kind, Tensor};

/// The largest difference between `a` and `b` relative to `b`'s largest magnitude.
pub fn max_rel(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    let diff = a.iter().zip(b).fold(0.0f64, |m, (&x, &y)| {
        m.max((f64::from(x) - f64::from(y)).abs())
    });
    diff / scale.max(1e-30)
}

/// One input of `arch` in [-2.5, 2.5), drawn from `seed`.
fn input(arch: &Arch<'_>, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..arch.input_len())
        .map(|_| rng.random_range(-2.5f32..2.5))
        .collect()
}

/// The paper's initialization of `arch` (from `seed`) run on one input through tch on
/// `device` and through the core: the logits' largest difference relative to the core's
/// largest logit. Also checks that the weights come back from tch unchanged.
pub fn tch_vs_core(arch: &Arch<'static>, seed: u64, device: Device) -> Result<f64> {
    let spec = paper_init(arch, seed)?;
    let net = Net::from_spec(&spec, device)?;
    let file = BlobFile::from_bytes(&spec.to_blob()?, arch.name);
    let model = file.model()?;
    let input = input(arch, seed);
    let s = arch.input;
    let x = Tensor::from_slice(&input)
        .f_reshape([1, s.c as i64, s.h as i64, s.w as i64])?
        .f_to_device(device)?;
    let tch_logits = {
        let _guard = tch::no_grad_guard();
        to_vec(&net.forward(&x, None)?)?
    };
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut core_logits = vec![0.0f32; model.classes()];
    model.forward(&input, &mut arena, &mut core_logits)?;
    ensure!(
        core_logits.iter().any(|&v| v != 0.0),
        "{}: degenerate logits",
        arch.name
    );
    ensure!(
        net.to_spec()? == spec,
        "{}: the weights did not come back from tch unchanged",
        arch.name
    );
    Ok(max_rel(&tch_logits, &core_logits))
}

/// Two towers on `device` against one tower on it, for `arch`'s paper initialization: the
/// logits' and the gradients' largest relative difference (over a batch of 4, cross-entropy
/// on fixed labels, dropout off).
pub fn towers_vs_one(arch: &Arch<'static>, seed: u64, device: Device) -> Result<(f64, f64)> {
    let spec = paper_init(arch, seed)?;
    let one = Net::from_spec(&spec, device)?;
    let two = Net::with_towers(&spec, &[device, device])?;
    ensure!(
        two.to_spec()?.params == spec.params,
        "the weights do not survive the split"
    );
    let s = arch.input;
    let n = 4;
    let x: Vec<f32> = (0..n).flat_map(|k| input(arch, seed + k)).collect();
    let x = Tensor::from_slice(&x)
        .f_reshape([n as i64, s.c as i64, s.h as i64, s.w as i64])?
        .f_to_device(device)?;
    let y = Tensor::from_slice(&[1i64, 3, 5, 7])
        .f_remainder(arch.classes() as i64)?
        .f_to_device(device)?;
    let mut logits = Vec::new();
    for net in [&one, &two] {
        let out = net.forward(&x, None)?;
        out.cross_entropy_for_logits(&y).backward();
        logits.push(to_vec(&out)?);
    }
    let logits_rel = max_rel(&logits[1], &logits[0]);
    let grads = |net: &Net| -> Result<Vec<(String, Vec<f32>)>> {
        let mut by_name: Vec<(String, Vec<f32>)> = Vec::new();
        for (name, _, t) in net.parameters() {
            let g = to_vec(&t.grad().f_to_kind(Kind::Float)?)?;
            match by_name.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.extend(g),
                None => by_name.push((name, g)),
            }
        }
        Ok(by_name)
    };
    let mut grads_rel = 0.0f64;
    for ((name, a), (other, b)) in grads(&one)?.iter().zip(&grads(&two)?) {
        ensure!(
            name == other,
            "parameters in another order: {name}, {other}"
        );
        grads_rel = grads_rel.max(max_rel(b, a));
    }
    Ok((logits_rel, grads_rel))
}
