//! Stochastic gradient descent with momentum and weight decay, with its state in our hands
//! (libtorch's optimizer does not expose its momentum buffers, and an exact resume needs
//! them).
//!
//! PyTorch's form: `v <- m v + (g + wd w)`, `w <- w - lr v`. With a constant rate it is the
//! paper's `v <- m v - wd lr w - lr g`, `w <- w + v` with `v` scaled by `-lr`; unlike the
//! paper's form, a rate drop does not shrink the velocity already built up.

use crate::net::Net;
use anyhow::{ensure, Result};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

/// Momentum buffers, one per parameter tensor of the net (same order, same device).
pub struct Sgd {
    /// Momentum factor.
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    velocity: Vec<Tensor>,
}

impl Sgd {
    /// Zero velocity for every parameter of `net`.
    pub fn new(net: &Net, momentum: f64, weight_decay: f64) -> Self {
        let velocity = net
            .parameters()
            .iter()
            .map(|(_, _, p)| p.zeros_like())
            .collect();
        Sgd {
            momentum,
            weight_decay,
            velocity,
        }
    }

    /// Clears the gradients before a backward pass.
    pub fn zero_grad(net: &Net) {
        for (_, _, p) in net.parameters() {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// One update with rate `lr`.
    pub fn step(&mut self, net: &Net, lr: f64) -> Result<()> {
        let params = net.parameters();
        ensure!(
            params.len() == self.velocity.len(),
            "optimizer state does not match the net"
        );
        tch::no_grad(|| -> Result<()> {
            for ((_, _, p), v) in params.iter().zip(self.velocity.iter_mut()) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let d = if self.weight_decay != 0.0 {
                    g + *p * self.weight_decay
                } else {
                    g
                };
                let _ = v.f_mul_scalar_(self.momentum)?.f_add_(&d)?;
                let mut w = (*p).shallow_clone();
                let _ = w.f_sub_(&(&*v * lr))?;
            }
            Ok(())
        })
    }

    /// The velocity by canonical parameter name, towers joined (so a checkpoint does not
    /// depend on how the net was split).
    pub fn state(&self, net: &Net) -> Vec<(String, Tensor)> {
        let mut joined: BTreeMap<String, Vec<Tensor>> = BTreeMap::new();
        for ((name, _, _), v) in net.parameters().iter().zip(&self.velocity) {
            joined
                .entry(name.clone())
                .or_default()
                .push(v.to_device(tch::Device::Cpu));
        }
        joined
            .into_iter()
            .map(|(n, parts)| (n, Tensor::cat(&parts, 0)))
            .collect()
    }

    /// Restores [`Sgd::state`], split the way `net` is.
    pub fn load_state(&mut self, net: &Net, state: &[(String, Tensor)]) -> Result<()> {
        let params = net.parameters();
        let towers = net.towers() as i64;
        for (i, (name, t, p)) in params.iter().enumerate() {
            let (_, whole) = state
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| anyhow::anyhow!("optimizer state lacks {name}"))?;
            let part = whole.chunk(towers, 0)[*t].to_kind(Kind::Float);
            ensure!(
                part.size() == p.size(),
                "optimizer state for {name} has shape {:?}, the net {:?}",
                whole.size(),
                p.size()
            );
            self.velocity[i] = part.to_device(p.device()).contiguous();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alexnet_core::builtin::MICRO;
    use tch::Device;

    /// One step by hand: v = g + wd w; w' = w - lr v.
    #[test]
    fn first_step_matches_the_formula() -> Result<()> {
        let spec = alexnet_host::init::paper_init(&MICRO, 1)?;
        let net = Net::from_spec(&spec, Device::Cpu)?;
        let mut sgd = Sgd::new(&net, 0.9, 5e-4);
        let x = Tensor::randn([2, 1, 28, 28], tch::kind::FLOAT_CPU);
        let y = Tensor::from_slice(&[0i64, 1]);
        Sgd::zero_grad(&net);
        net.forward(&x, None)?
            .cross_entropy_for_logits(&y)
            .backward();
        let (_, _, w) = net.parameters()[0];
        let before = w.detach().copy();
        let g = w.grad().copy();
        sgd.step(&net, 0.1)?;
        let expected = &before - (&g + &before * 5e-4) * 0.1;
        let diff = (w.detach() - expected).abs().max().double_value(&[]);
        assert!(diff < 1e-7, "{diff}");
        // The state survives a round trip through another split of the net.
        let two = Net::with_towers(&spec, &[Device::Cpu, Device::Cpu])?;
        let mut other = Sgd::new(&two, 0.9, 5e-4);
        other.load_state(&two, &sgd.state(&net))?;
        for ((a, ta), (b, tb)) in sgd.state(&net).iter().zip(other.state(&two).iter()) {
            assert_eq!(a, b);
            assert!(ta.equal(tb), "{a}");
        }
        Ok(())
    }
}
