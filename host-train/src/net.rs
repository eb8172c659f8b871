//! The tch network of an architecture descriptor.

use crate::lrn::lrn;
use alexnet_core::{Arch, Layer};
use alexnet_host::{LayerParams, ModelSpec};
use anyhow::{bail, Context, Result};
use tch::{nn, Device, Kind, Tensor};

/// One layer's parameters in the var store.
enum Params {
    Conv(nn::Conv2D),
    Linear(nn::Linear),
    None,
}

/// AlexNet in tch, layer for layer as the descriptor says.
pub struct Net {
    /// The variables (named `conv1.weight`, ..., `fc8.bias`).
    pub vs: nn::VarStore,
    layers: Vec<Layer>,
    params: Vec<Params>,
    spec: ModelSpec,
}

impl Net {
    /// A network for `spec`'s architecture holding `spec`'s f32 weights, on `device`.
    pub fn from_spec(spec: &ModelSpec, device: Device) -> Result<Self> {
        let arch = spec.arch();
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let mut params = Vec::with_capacity(arch.layers.len());
        for step in arch.walk() {
            let step = step.map_err(|e| anyhow::anyhow!("{}", alexnet_core::Error::Arch(e)))?;
            let name = arch.param_layer_name(step.index).map(|n| n.to_string());
            let p = match (step.layer, name) {
                (Layer::Conv(c), Some(name)) => {
                    let config = nn::ConvConfig {
                        stride: c.stride as i64,
                        padding: c.padding as i64,
                        groups: c.groups as i64,
                        ..Default::default()
                    };
                    Params::Conv(nn::conv2d(
                        &root / name,
                        step.input.c as i64,
                        c.out_channels as i64,
                        c.kernel as i64,
                        config,
                    ))
                }
                (Layer::Linear { out_features }, Some(name)) => Params::Linear(nn::linear(
                    &root / name,
                    step.input.len() as i64,
                    out_features as i64,
                    Default::default(),
                )),
                _ => Params::None,
            };
            params.push(p);
        }
        let mut net = Net {
            vs,
            layers: arch.layers.to_vec(),
            params,
            spec: spec.clone(),
        };
        net.load(spec)?;
        Ok(net)
    }

    /// Copies `spec`'s weights into the var store.
    pub fn load(&mut self, spec: &ModelSpec) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            for (i, p) in self.params.iter_mut().enumerate() {
                let (ws, bs) = match p {
                    Params::Conv(c) => (&mut c.ws, c.bs.as_mut()),
                    Params::Linear(l) => (&mut l.ws, l.bs.as_mut()),
                    Params::None => continue,
                };
                let src = spec
                    .params
                    .get(i)
                    .and_then(|p| p.as_ref())
                    .with_context(|| format!("layer {i} has no weights"))?;
                let shape = ws.size();
                ws.copy_(&Tensor::from_slice(&src.weight).reshape(&shape));
                let Some(bs) = bs else {
                    bail!("layer {i} has no bias")
                };
                bs.copy_(&Tensor::from_slice(&src.bias));
            }
            Ok(())
        })
    }

    /// The weights as a host spec (preprocessing and labels kept from the spec it was made
    /// from): ready for a core blob, safetensors or `quantize`.
    pub fn to_spec(&self) -> Result<ModelSpec> {
        let mut spec = self.spec.clone();
        for (i, p) in self.params.iter().enumerate() {
            let (ws, bs) = match p {
                Params::Conv(c) => (&c.ws, c.bs.as_ref()),
                Params::Linear(l) => (&l.ws, l.bs.as_ref()),
                Params::None => continue,
            };
            let to_vec = |t: &Tensor| -> Result<Vec<f32>> {
                Ok(Vec::<f32>::try_from(
                    t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1),
                )?)
            };
            let bias = bs.map(to_vec).transpose()?.context("no bias")?;
            spec.params[i] = Some(LayerParams {
                weight: to_vec(ws)?,
                bias,
            });
        }
        Ok(spec)
    }

    /// The logits for a batch `[N, C, H, W]`; dropout only when `train`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut x = x.shallow_clone();
        for (layer, p) in self.layers.iter().zip(&self.params) {
            x = match (layer, p) {
                (Layer::Conv(_), Params::Conv(c)) => x.apply(c),
                (Layer::Linear { .. }, Params::Linear(l)) => x.apply(l),
                (Layer::Relu, _) => x.relu(),
                (Layer::Lrn(spec), _) => lrn(&x, spec),
                (Layer::MaxPool(pool), _) => {
                    let (w, s) = (pool.window as i64, pool.stride as i64);
                    x.max_pool2d([w, w], [s, s], [0, 0], [1, 1], false)
                }
                (Layer::AdaptiveAvgPool { out_h, out_w }, _) => {
                    x.adaptive_avg_pool2d([*out_h as i64, *out_w as i64])
                }
                (Layer::Flatten, _) => x.flatten(1, -1),
                (Layer::Dropout { p }, _) => x.dropout(*p as f64, train),
                // The logits are the output; softmax belongs to the loss.
                _ => x,
            };
        }
        x
    }

    /// The architecture.
    pub fn arch(&self) -> Arch<'_> {
        self.spec.arch()
    }
}
