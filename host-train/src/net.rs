//! The tch network of an architecture descriptor, on one device or split into towers.
//!
//! With one tower this is the descriptor's net, layer for layer. With two towers (the
//! paper's two GPUs) every convolution and fully connected layer is cut in half along its
//! output channels: tower `t` holds half `t` of the kernels on its own device. A grouped
//! convolution whose groups divide among the towers (conv2, conv4, conv5) reads only its
//! own tower's maps; conv3 and the fully connected layers read both towers' maps, so those
//! are where activations cross, exactly as in the paper. The descriptor's LRN normalizes
//! across all maps, so each tower also borrows the `n/2` maps next to its edge from its
//! neighbour (2 of conv1's 96 maps: without them the towers would compute a different net
//! than the device runs).

use crate::lrn::lrn;
use alexnet_core::{Arch, Layer};
use alexnet_host::{LayerParams, ModelSpec};
use anyhow::{bail, ensure, Context, Result};
use tch::{Device, Kind, Tensor};

/// One parameterized layer's share in one tower.
struct Part {
    weight: Tensor,
    bias: Tensor,
}

/// AlexNet in tch, layer for layer as the descriptor says, split across `devices`.
pub struct Net {
    layers: Vec<Layer>,
    /// Per layer: one part per tower (empty for layers without parameters).
    parts: Vec<Vec<Part>>,
    devices: Vec<Device>,
    spec: ModelSpec,
}

/// Mixes a seed with a counter (SplitMix64's finalizer): independent streams per step, layer
/// or sample from one user seed.
pub fn mix(seed: u64, counter: u64) -> u64 {
    let mut z = seed ^ counter.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 32-bit integer hash (Wellons' lowbias32 shape, with multipliers below 2^31 so that every
/// product of a 32-bit value stays below 2^63): libtorch's int64 arithmetic computes it
/// exactly, the same on every device.
fn hash32(x: &Tensor) -> Result<Tensor> {
    const LOW32: i64 = 0xffff_ffff;
    let x = x.f_bitwise_xor_tensor(&x.f_bitwise_right_shift_tensor_scalar(16)?)?;
    let x = x.f_mul_scalar(0x7feb_352d_i64)?.f_bitwise_and(LOW32)?;
    let x = x.f_bitwise_xor_tensor(&x.f_bitwise_right_shift_tensor_scalar(15)?)?;
    let x = x.f_mul_scalar(0x1b87_3593_i64)?.f_bitwise_and(LOW32)?;
    Ok(x.f_bitwise_xor_tensor(&x.f_bitwise_right_shift_tensor_scalar(16)?)?)
}

/// The keep-mask (`0` or `1 / (1 - p)`) of columns `start..start + width` of an `[n, total]`
/// dropout mask drawn from `seed`, made on `device`: element `(i, j)` is dropped when the
/// 24-bit hash of `(seed, i * total + j)` falls below `p * 2^24`.
pub fn dropout_mask(
    (n, total): (i64, i64),
    (start, width): (i64, i64),
    p: f32,
    seed: u64,
    device: Device,
) -> Result<Tensor> {
    ensure!(
        (n as u64).saturating_mul(total as u64) <= u32::MAX as u64,
        "a dropout mask of {n} x {total} is beyond the 32-bit index of its hash"
    );
    let key = mix(seed, 0);
    let (low, high) = ((key & 0xffff_ffff) as i64, (key >> 32) as i64);
    let rows = Tensor::f_arange(n, (Kind::Int64, device))?
        .f_mul_scalar(total)?
        .f_unsqueeze(1)?;
    let cols =
        Tensor::f_arange_start(start, start + width, (Kind::Int64, device))?.f_unsqueeze(0)?;
    let index = rows.f_add(&cols)?;
    let h = hash32(&hash32(&index.f_bitwise_xor(low)?)?.f_bitwise_xor(high)?)?;
    let threshold = (f64::from(p) * f64::from(1u32 << 24)).round() as i64;
    let keep = 1.0 / (1.0 - f64::from(p));
    Ok(h.f_bitwise_right_shift_tensor_scalar(8)?
        .f_ge(threshold)?
        .f_to_kind(Kind::Float)?
        .f_mul_scalar(keep)?)
}

/// Inverted dropout over feature shards `[N, F_t]`: one mask over the whole `[N, sum F_t]`
/// (`whole`: every shard holds all features, so all take the same mask). Each tower draws
/// its own columns of it on its own device ([`dropout_mask`]): no host work and no copy per
/// step, and the same mask for any number of towers, on the CPU and on CUDA.
fn dropout(shards: &[Tensor], p: f32, seed: u64, whole: bool) -> Result<Vec<Tensor>> {
    if p <= 0.0 {
        return Ok(shards.iter().map(|s| s.shallow_clone()).collect());
    }
    let n = shards[0].size()[0];
    let widths: Vec<i64> = shards.iter().map(|s| s.size()[1]).collect();
    let total: i64 = if whole {
        widths[0]
    } else {
        widths.iter().sum()
    };
    let mut start = 0;
    let mut out = Vec::with_capacity(shards.len());
    for (s, &w) in shards.iter().zip(&widths) {
        let mask = dropout_mask((n, total), (start, w), p, seed, s.device())?;
        out.push(s.f_mul(&mask)?);
        if !whole {
            start += w;
        }
    }
    Ok(out)
}

/// A tensor as f32 values on the host.
pub fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(
        t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1),
    )?)
}

impl Net {
    /// The network of `spec`'s architecture holding `spec`'s f32 weights, on `device`.
    pub fn from_spec(spec: &ModelSpec, device: Device) -> Result<Self> {
        Self::with_towers(spec, &[device])
    }

    /// The network split into one tower per entry of `devices` (a device may repeat: two
    /// towers on one GPU, or on the CPU, run the same code as two GPUs).
    pub fn with_towers(spec: &ModelSpec, devices: &[Device]) -> Result<Self> {
        ensure!(!devices.is_empty(), "no device to put the network on");
        let arch = spec.arch();
        let towers = devices.len();
        let mut parts = Vec::with_capacity(arch.layers.len());
        for step in arch.walk() {
            let step = step.map_err(|e| anyhow::anyhow!("{}", alexnet_core::Error::Arch(e)))?;
            let out = match step.layer {
                Layer::Conv(c) => c.out_channels as usize,
                Layer::Linear { out_features } => out_features as usize,
                _ => {
                    parts.push(Vec::new());
                    continue;
                }
            };
            if let Layer::Conv(c) = step.layer {
                ensure!(
                    c.groups == 1 || (c.groups as usize).is_multiple_of(towers),
                    "layer {} has {} groups, which {towers} towers cannot split",
                    step.index,
                    c.groups
                );
            }
            ensure!(
                out % towers == 0,
                "layer {} has {out} outputs, which {towers} towers cannot share equally",
                step.index
            );
            let dims: Vec<i64> = step
                .layer
                .weight_dims(step.input)
                .iter()
                .filter(|&&d| d != 0)
                .map(|&d| d as i64)
                .collect();
            let mut part_dims = dims.clone();
            part_dims[0] /= towers as i64;
            let layer_parts = devices
                .iter()
                .map(|&d| Part {
                    weight: Tensor::zeros(part_dims.as_slice(), (Kind::Float, d))
                        .set_requires_grad(true),
                    bias: Tensor::zeros([part_dims[0]], (Kind::Float, d)).set_requires_grad(true),
                })
                .collect();
            parts.push(layer_parts);
        }
        let mut net = Net {
            layers: arch.layers.to_vec(),
            parts,
            devices: devices.to_vec(),
            spec: spec.clone(),
        };
        net.load(spec)?;
        Ok(net)
    }

    /// The devices, one per tower.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Copies `spec`'s weights into the towers.
    pub fn load(&mut self, spec: &ModelSpec) -> Result<()> {
        ensure!(
            spec.layers == self.layers && spec.input == self.spec.input,
            "the weights are for another architecture"
        );
        let towers = self.devices.len() as i64;
        tch::no_grad(|| -> Result<()> {
            for (i, parts) in self.parts.iter_mut().enumerate() {
                if parts.is_empty() {
                    continue;
                }
                let src = spec
                    .params
                    .get(i)
                    .and_then(|p| p.as_ref())
                    .with_context(|| format!("layer {i} has no weights"))?;
                let mut shape = parts[0].weight.size();
                shape[0] *= towers;
                let weight = Tensor::from_slice(&src.weight).f_reshape(&shape)?;
                let bias = Tensor::from_slice(&src.bias);
                ensure!(
                    bias.size()[0] == shape[0],
                    "layer {i}: {} biases for {} outputs",
                    bias.size()[0],
                    shape[0]
                );
                for (t, (w, b)) in weight
                    .chunk(towers, 0)
                    .iter()
                    .zip(bias.chunk(towers, 0))
                    .enumerate()
                {
                    parts[t].weight.copy_(w);
                    parts[t].bias.copy_(&b);
                }
            }
            Ok(())
        })
    }

    /// Every trainable tensor with its canonical name (`conv1.weight`, ...) and tower.
    pub fn parameters(&self) -> Vec<(String, usize, &Tensor)> {
        let arch = self.spec.arch();
        let mut out = Vec::new();
        for (i, parts) in self.parts.iter().enumerate() {
            let Some(name) = arch.param_layer_name(i) else {
                continue;
            };
            for (t, p) in parts.iter().enumerate() {
                out.push((format!("{name}.weight"), t, &p.weight));
                out.push((format!("{name}.bias"), t, &p.bias));
            }
        }
        out
    }

    /// Number of towers.
    pub fn towers(&self) -> usize {
        self.devices.len()
    }

    /// The weights as a host spec (preprocessing and labels kept from the spec it was made
    /// from): ready for a core blob, safetensors or `quantize`.
    pub fn to_spec(&self) -> Result<ModelSpec> {
        let mut spec = self.spec.clone();
        for (i, parts) in self.parts.iter().enumerate() {
            if parts.is_empty() {
                continue;
            }
            let mut weight = Vec::new();
            let mut bias = Vec::new();
            for p in parts {
                weight.extend(to_vec(&p.weight)?);
                bias.extend(to_vec(&p.bias)?);
            }
            spec.params[i] = Some(LayerParams { weight, bias });
        }
        Ok(spec)
    }

    /// Replaces the preprocessing and labels that exports carry.
    pub fn set_metadata(
        &mut self,
        preprocess: alexnet_host::PreprocessSpec,
        labels: Option<Vec<String>>,
    ) {
        self.spec.preprocess = preprocess;
        self.spec.labels = labels;
    }

    /// The logits for a batch `[N, C, H, W]` (on the first tower's device), in inference
    /// mode (dropout is the identity).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let seed = train.then_some(0x5eed);
        self.forward(x, seed)
            .unwrap_or_else(|e| panic!("forward pass: {e:#}"))
    }

    /// The logits for a batch `[N, C, H, W]` (on the first tower's device). With
    /// `dropout_seed`, dropout is on and its masks are a function of that seed alone (not of
    /// libtorch's global generator), so a step is the same whatever the towers, threads,
    /// devices or restarts.
    pub fn forward(&self, x: &Tensor, dropout_seed: Option<u64>) -> Result<Tensor> {
        let towers = self.devices.len() as i64;
        // One shard per tower; the input is whole, so every tower starts with all of it.
        let mut shards: Vec<Tensor> = self.devices.iter().map(|&d| x.to_device(d)).collect();
        let mut whole = true;
        for (index, (layer, parts)) in self.layers.iter().zip(&self.parts).enumerate() {
            shards = match layer {
                Layer::Conv(c) => {
                    // Groups that divide among the towers stay within a tower; otherwise
                    // every tower reads every map (the crossing).
                    let split = c.groups as i64 % towers == 0;
                    let (inputs, groups) = if split {
                        let inputs = if whole && towers > 1 {
                            let per = x.size()[1] / towers;
                            shards
                                .iter()
                                .enumerate()
                                .map(|(t, s)| s.narrow(1, t as i64 * per, per))
                                .collect()
                        } else {
                            shards
                        };
                        (inputs, c.groups as i64 / towers)
                    } else {
                        (self.gather_each(&shards, whole), c.groups as i64)
                    };
                    let (s, p) = (c.stride as i64, c.padding as i64);
                    inputs
                        .iter()
                        .zip(parts)
                        .map(|(x, part)| {
                            x.f_conv2d(
                                &part.weight,
                                Some(&part.bias),
                                [s, s],
                                [p, p],
                                [1, 1],
                                groups,
                            )
                        })
                        .collect::<Result<_, _>>()?
                }
                Layer::Linear { .. } => {
                    let inputs = self.gather_each(&shards, whole);
                    inputs
                        .iter()
                        .zip(parts)
                        .map(|(x, part)| x.f_linear(&part.weight, Some(&part.bias)))
                        .collect::<Result<_, _>>()?
                }
                Layer::Lrn(spec) if !whole && towers > 1 => self.lrn_with_halo(&shards, spec)?,
                Layer::Lrn(spec) => shards.iter().map(|x| lrn(x, spec)).collect(),
                Layer::Relu => shards.iter().map(|x| x.relu()).collect(),
                Layer::MaxPool(pool) => {
                    let (w, s) = (pool.window as i64, pool.stride as i64);
                    shards
                        .iter()
                        .map(|x| x.f_max_pool2d([w, w], [s, s], [0, 0], [1, 1], false))
                        .collect::<Result<_, _>>()?
                }
                Layer::AdaptiveAvgPool { out_h, out_w } => shards
                    .iter()
                    .map(|x| x.adaptive_avg_pool2d([*out_h as i64, *out_w as i64]))
                    .collect(),
                Layer::Flatten => shards.iter().map(|x| x.flatten(1, -1)).collect(),
                Layer::Dropout { p } => match dropout_seed {
                    Some(seed) => dropout(&shards, *p, mix(seed, index as u64), whole)?,
                    None => shards,
                },
                // The logits are the output; softmax belongs to the loss.
                _ => shards,
            };
            whole = whole && !matches!(layer, Layer::Conv(_) | Layer::Linear { .. });
        }
        if whole {
            bail!("the architecture has no layer with parameters");
        }
        let first = self.devices[0];
        let outs: Vec<Tensor> = shards.iter().map(|s| s.to_device(first)).collect();
        Ok(Tensor::cat(&outs, 1))
    }

    /// Every tower's view of the whole activation: its own shard and the others' copied to
    /// its device (the crossing). `whole`: every shard already holds everything.
    fn gather_each(&self, shards: &[Tensor], whole: bool) -> Vec<Tensor> {
        if whole || shards.len() == 1 {
            return shards.iter().map(|s| s.shallow_clone()).collect();
        }
        self.devices
            .iter()
            .map(|&d| {
                let parts: Vec<Tensor> = shards.iter().map(|s| s.to_device(d)).collect();
                Tensor::cat(&parts, 1)
            })
            .collect()
    }

    /// LRN on channel shards: each tower borrows the `n/2` maps beyond each of its edges.
    fn lrn_with_halo(
        &self,
        shards: &[Tensor],
        spec: &alexnet_core::arch::LrnSpec,
    ) -> Result<Vec<Tensor>> {
        let half = (spec.size / 2) as i64;
        let mut out = Vec::with_capacity(shards.len());
        for (t, x) in shards.iter().enumerate() {
            let d = self.devices[t];
            let c = x.size()[1];
            let mut pieces = Vec::with_capacity(3);
            let mut before = 0;
            if t > 0 {
                let prev = &shards[t - 1];
                let pc = prev.size()[1];
                before = half.min(pc);
                pieces.push(prev.narrow(1, pc - before, before).to_device(d));
            }
            pieces.push(x.shallow_clone());
            if let Some(next) = shards.get(t + 1) {
                let take = half.min(next.size()[1]);
                pieces.push(next.narrow(1, 0, take).to_device(d));
            }
            let extended = Tensor::cat(&pieces, 1);
            out.push(lrn(&extended, spec).narrow(1, before, c));
        }
        Ok(out)
    }

    /// The architecture.
    pub fn arch(&self) -> Arch<'_> {
        self.spec.arch()
    }

    /// The spec this net was built from (metadata and architecture).
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alexnet_core::builtin::{MICRO, PAPER};

    fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        let diff = (a - b).abs().max().double_value(&[]);
        diff / b.abs().max().double_value(&[]).max(1e-30)
    }

    /// Two towers compute the descriptor's net: same logits as one tower, same gradients,
    /// and the weights survive the split.
    #[test]
    fn two_towers_on_one_device_equal_one_tower() -> Result<()> {
        for (arch, seed) in [(&MICRO, 3), (&PAPER, 4)] {
            let (logits, grads) = crate::verify::towers_vs_one(arch, seed, Device::Cpu)?;
            assert!(logits < 1e-5, "{}: logits differ by {logits}", arch.name);
            assert!(grads < 1e-4, "{}: gradients differ by {grads}", arch.name);
        }
        Ok(())
    }

    /// Dropout's masks are drawn on each tower's device from the seed alone: about `p` of
    /// the values dropped, the same mask whatever the towers, different per seed.
    #[test]
    fn dropout_masks_are_the_seeds_alone() -> Result<()> {
        let full = dropout_mask((64, 4096), (0, 4096), 0.5, 9, Device::Cpu)?;
        let dropped = full.eq(0.0).to_kind(Kind::Double).mean(Kind::Double);
        let dropped = dropped.double_value(&[]);
        assert!((dropped - 0.5).abs() < 0.005, "dropped {dropped}");
        let kept: Vec<f32> = to_vec(&full)?.into_iter().filter(|&v| v != 0.0).collect();
        assert!(kept.iter().all(|&v| v == 2.0));
        let right = dropout_mask((64, 4096), (1000, 3096), 0.5, 9, Device::Cpu)?;
        assert!(
            right.equal(&full.narrow(1, 1000, 3096)),
            "a tower's columns"
        );
        let other = dropout_mask((64, 4096), (0, 4096), 0.5, 10, Device::Cpu)?;
        let same = full
            .eq_tensor(&other)
            .to_kind(Kind::Double)
            .mean(Kind::Double);
        assert!(same.double_value(&[]) < 0.6, "another seed, another mask");

        let spec = alexnet_host::init::paper_init(&MICRO, 5)?;
        let one = Net::from_spec(&spec, Device::Cpu)?;
        let two = Net::with_towers(&spec, &[Device::Cpu, Device::Cpu])?;
        let _guard = tch::no_grad_guard();
        let x = Tensor::randn([8, 1, 28, 28], tch::kind::FLOAT_CPU);
        let (a, b) = (one.forward(&x, Some(77))?, two.forward(&x, Some(77))?);
        assert!(max_rel(&b, &a) < 1e-5, "towers draw the same masks");
        assert!(max_rel(&one.forward(&x, Some(78))?, &a) > 1e-3);
        Ok(())
    }

    #[test]
    fn towers_must_share_outputs_equally() {
        let spec = alexnet_host::init::paper_init(&MICRO, 0).unwrap();
        let three = [Device::Cpu; 3];
        let err = Net::with_towers(&spec, &three).err().unwrap();
        assert!(format!("{err}").contains("cannot share"), "{err}");
    }
}
