//! ONNX files of AlexNet-family nets, both ways: [`load`] builds the net's layers from the
//! graph's nodes (with their weights) and [`save`] writes an f32 model as an ONNX graph that
//! ONNX Runtime and PyTorch's importers run.
//!
//! A graph is read as a chain: each node takes the previous node's output as its first input,
//! and every other input is a constant (an initializer or a `Constant` node). The operators
//! are the family's: `Conv`, `Relu`, `LRN`, `MaxPool`, `AveragePool`, `GlobalAveragePool`,
//! `Flatten`, `Gemm`, and `Dropout`, `Identity` and a final `Softmax`. Anything else is refused
//! with the first node that cannot be taken. The protobuf is decoded by `prost` with the
//! schema's messages in `proto.rs`.
//!
//! One convention differs between ONNX and the paper: ONNX's `LRN` divides `alpha` by the
//! window size, as Caffe does ([`LrnConvention::AlphaOverN`]). An imported `LRN` keeps its
//! ONNX value; an exported paper LRN is written with `alpha * size`, rounded to f32.

mod proto;

use crate::spec::{LayerParams, MeanSpec, ModelSpec, PreprocessSpec};
use alexnet_core::arch::{Arch, ConvSpec, Layer, LrnConvention, LrnSpec, PoolSpec, Shape};
use alexnet_core::model::ChannelOrder;
use anyhow::{anyhow, bail, ensure, Context, Result};
use prost::Message;
use proto::{data_type, AttributeProto, AttributeType, NodeProto, TensorProto};
use std::collections::HashMap;
use std::path::Path;

/// The operators [`load`] takes, for its error messages.
const SUPPORTED: &str = "Conv, Relu, LRN, MaxPool, AveragePool, GlobalAveragePool, Flatten, \
                         Gemm, Dropout, Identity and a final Softmax";
/// What [`save`] writes: IR version 8 and the default opset 17, which ONNX Runtime since 1.14
/// and every `onnx` package since 1.12 read.
const IR_VERSION: i64 = 8;
const OPSET: i64 = 17;
/// Metadata keys under which [`save`] keeps what the graph cannot say and [`load`] reads back.
const META_ARCH: &str = "alexnet.arch";
const META_LABELS: &str = "alexnet.labels";
const META_PREPROCESS: &str = "alexnet.preprocess";

/// An f32 model read from an ONNX file: the net as the graph builds it, the built-in net's
/// preprocessing and labels when the graph is one of them, otherwise those its metadata gives
/// (files written by [`save`]) or the defaults for its channel count.
pub fn load(path: &Path, arch: Option<&Arch<'_>>) -> Result<ModelSpec> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    from_bytes(&bytes, arch).with_context(|| format!("cannot convert {}", path.display()))
}

/// [`load`] on a file's bytes. With `arch`, the graph must be that net.
pub fn from_bytes(bytes: &[u8], arch: Option<&Arch<'_>>) -> Result<ModelSpec> {
    let model = proto::ModelProto::decode(bytes)
        .context("not an ONNX model: the protobuf does not decode (truncated or another file)")?;
    let graph = model
        .graph
        .as_ref()
        .context("the ONNX model has no graph")?;
    if let Some(node) = graph
        .node
        .iter()
        .find(|n| !n.domain.is_empty() && n.domain != "ai.onnx")
    {
        bail!(
            "node {:?} ({}) is from operator set {:?}, not ONNX's own",
            node.name,
            node.op_type,
            node.domain
        );
    }
    let chain = Chain::read(graph)?;
    let meta: HashMap<&str, &str> = model
        .metadata_props
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    chain.into_spec(arch, &graph.name, &meta)
}

/// The layers and their parameters, in graph order, and the input shape.
struct Chain {
    input: Shape,
    layers: Vec<(Layer, Option<LayerParams>)>,
}

impl Chain {
    fn read(graph: &proto::GraphProto) -> Result<Chain> {
        let mut constants: HashMap<&str, &TensorProto> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let data_inputs: Vec<&proto::ValueInfoProto> = graph
            .input
            .iter()
            .filter(|v| !constants.contains_key(v.name.as_str()))
            .collect();
        let [input] = data_inputs[..] else {
            bail!(
                "the graph has {} data inputs ({}); an AlexNet takes one image tensor",
                data_inputs.len(),
                names(data_inputs.iter().map(|v| v.name.as_str()))
            );
        };
        let mut shape = input_shape(input)?;
        let first = shape;
        let mut current = input.name.as_str();
        let mut layers = Vec::new();
        let mut flat = false;
        for (i, node) in graph.node.iter().enumerate() {
            let at = || {
                format!(
                    "node {i} ({}{})",
                    node.op_type,
                    if node.name.is_empty() {
                        String::new()
                    } else {
                        format!(" {:?}", node.name)
                    }
                )
            };
            if node.op_type == "Constant" && node.input.is_empty() {
                let value = attr(node, "value")
                    .and_then(|a| a.t.as_ref())
                    .with_context(|| format!("{}: only tensor constants are read", at()))?;
                let out = node
                    .output
                    .first()
                    .with_context(|| format!("{}: no output", at()))?;
                constants.insert(out.as_str(), value);
                continue;
            }
            ensure!(
                node.input.first().map(String::as_str) == Some(current),
                "{}: reads {:?}, not the output of the node before it ({current:?}); the \
                 converter takes a chain of layers",
                at(),
                node.input.first().map(String::as_str).unwrap_or("")
            );
            let constant = |k: usize| -> Result<Option<Tensor>> {
                match node.input.get(k).map(String::as_str) {
                    None | Some("") => Ok(None),
                    Some(name) => {
                        let t = constants.get(name).with_context(|| {
                            format!("{}: input {name:?} is computed, not a constant", at())
                        })?;
                        Tensor::read(t).map(Some).with_context(at)
                    }
                }
            };
            let layer = match node.op_type.as_str() {
                "Conv" => Some(conv(node, shape, constant(1)?, constant(2)?).with_context(at)?),
                "Gemm" => {
                    // ONNX's Gemm takes a matrix: a Flatten (axis 1) comes first.
                    ensure!(
                        flat,
                        "{}: Gemm on a [{}, {}, {}] tensor: a Flatten must come first",
                        at(),
                        shape.c,
                        shape.h,
                        shape.w
                    );
                    Some(gemm(node, shape, constant(1)?, constant(2)?).with_context(at)?)
                }
                "Relu" => Some((Layer::Relu, None)),
                "LRN" => Some((Layer::Lrn(lrn(node).with_context(at)?), None)),
                "MaxPool" => Some((
                    Layer::MaxPool(max_pool(node, shape).with_context(at)?),
                    None,
                )),
                "AveragePool" => Some((average_pool(node, shape).with_context(at)?, None)),
                "GlobalAveragePool" => Some((Layer::AdaptiveAvgPool { out_h: 1, out_w: 1 }, None)),
                "Flatten" => {
                    let axis = int(node, "axis").unwrap_or(1);
                    ensure!(axis == 1, "{}: Flatten from axis {axis}; 1 is needed", at());
                    flat = true;
                    Some((Layer::Flatten, None))
                }
                "Dropout" | "Identity" => None,
                "Softmax" => {
                    ensure!(
                        i + 1 == graph.node.len(),
                        "{}: Softmax is only taken as the last node",
                        at()
                    );
                    Some((Layer::Softmax, None))
                }
                _ => bail!("{} is not supported: the converter takes {SUPPORTED}", at()),
            };
            if let Some((layer, params)) = layer {
                shape = layer
                    .output_shape(shape)
                    .map_err(|p| anyhow!("{}: {p:?} on a {shape:?} input", at()))?;
                layers.push((layer, params));
            }
            current = node
                .output
                .first()
                .map(String::as_str)
                .with_context(|| format!("{}: no output", at()))?;
        }
        let out = graph.output.first().context("the graph has no output")?;
        ensure!(
            graph.output.len() == 1 && out.name == current,
            "the graph's output {:?} is not the last node's ({current:?})",
            out.name
        );
        ensure!(!layers.is_empty(), "the graph has no layers");
        Ok(Chain {
            input: first,
            layers,
        })
    }

    /// The spec: a built-in net's descriptor and profile where the graph computes that net,
    /// else the graph's own layers under the metadata's (or the graph's) name.
    fn into_spec(
        self,
        arch: Option<&Arch<'_>>,
        graph_name: &str,
        meta: &HashMap<&str, &str>,
    ) -> Result<ModelSpec> {
        let builtin = alexnet_core::builtin::ALL
            .iter()
            .copied()
            .find(|b| self.computes(b));
        if let Some(arch) = arch {
            ensure!(
                self.computes(arch),
                "the graph is not the {} net: its layers are {}",
                arch.name,
                self.describe()
            );
        }
        let mut spec = match arch.or(builtin) {
            Some(net) => {
                // The descriptor's layers; the graph's parameters in order.
                let mut params = self.layers.into_iter().filter_map(|(_, p)| p);
                let slots = net
                    .layers
                    .iter()
                    .map(|l| if l.has_params() { params.next() } else { None })
                    .collect();
                ModelSpec::with_defaults(net, slots)
            }
            None => {
                let (layers, params): (Vec<Layer>, Vec<Option<LayerParams>>) =
                    self.layers.into_iter().unzip();
                let name = meta
                    .get(META_ARCH)
                    .copied()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(if graph_name.is_empty() {
                        "onnx"
                    } else {
                        graph_name
                    });
                // At most 16 bytes, cut at a character boundary.
                let mut end = name.len().min(16);
                while !name.is_char_boundary(end) {
                    end -= 1;
                }
                let name = name[..end].to_string();
                let arch = Arch {
                    name: &name,
                    input: self.input,
                    layers: &layers,
                };
                let preprocess = crate::profile::preprocess_for(&arch);
                ModelSpec {
                    name: name.clone(),
                    input: self.input,
                    layers,
                    params,
                    preprocess,
                    labels: None,
                    quant: None,
                }
            }
        };
        if let Some(labels) = meta.get(META_LABELS) {
            spec.labels = Some(labels.lines().map(str::to_string).collect());
        }
        if let Some(json) = meta.get(META_PREPROCESS) {
            spec.preprocess = preprocess_from_json(json)
                .with_context(|| format!("the metadata's {META_PREPROCESS} is not readable"))?;
        }
        Ok(spec)
    }

    /// Whether the graph computes `arch`: the same layers once dropouts (the identity at
    /// inference) and a final softmax (outside the logits) are set aside, LRNs compared by what
    /// they compute (`alpha` within one f32 step of the descriptor's, the rounding of the
    /// `alpha * size` a paper LRN is exported with).
    fn computes(&self, arch: &Arch<'_>) -> bool {
        let essential = |l: &&Layer| !matches!(l, Layer::Dropout { .. } | Layer::Softmax);
        let ours = self.layers.iter().map(|(l, _)| l).filter(essential);
        let theirs = arch.layers.iter().filter(essential);
        self.input == arch.input
            && ours.clone().count() == theirs.clone().count()
            && ours.zip(theirs).all(|(a, b)| match (a, b) {
                (Layer::Lrn(a), Layer::Lrn(b)) => {
                    let step = a
                        .alpha_effective()
                        .to_bits()
                        .abs_diff(b.alpha_effective().to_bits());
                    a.size == b.size && a.beta == b.beta && a.k == b.k && step <= 1
                }
                (a, b) => a == b,
            })
    }

    fn describe(&self) -> String {
        names(self.layers.iter().map(|(l, _)| l.kind_name()))
    }
}

fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// A constant tensor's dimensions and values, as f32.
struct Tensor {
    dims: Vec<usize>,
    values: Vec<f32>,
}

impl Tensor {
    fn read(t: &TensorProto) -> Result<Tensor> {
        let name = &t.name;
        ensure!(
            t.data_location == 0 && t.external_data.is_empty(),
            "tensor {name:?} is stored in an external file; save the model with its weights \
             inside (onnx.save_model(..., save_as_external_data=False))"
        );
        let dims: Vec<usize> = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| anyhow!("tensor {name:?}: dimension {d}")))
            .collect::<Result<_>>()?;
        let count = dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= alexnet_core::arch::MAX_ELEMENTS)
            .with_context(|| format!("tensor {name:?} has shape {dims:?}: too large"))?;
        let raw = &t.raw_data;
        let values: Vec<f32> = match t.data_type {
            data_type::FLOAT if !raw.is_empty() => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            data_type::FLOAT => t.float_data.clone(),
            data_type::DOUBLE if !raw.is_empty() => raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            data_type::DOUBLE => t.double_data.iter().map(|&v| v as f32).collect(),
            data_type::FLOAT16 => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            data_type::INT64 => t.int64_data.iter().map(|&v| v as f32).collect(),
            other => bail!(
                "tensor {name:?} has element type {} ; f32, f64 or f16 weights are needed",
                match other {
                    data_type::INT8 => "int8 (a quantized model: convert its f32 original)",
                    data_type::UINT8 => "uint8 (a quantized model: convert its f32 original)",
                    data_type::INT32 => "int32",
                    data_type::BFLOAT16 => "bfloat16",
                    _ => "an unsupported one",
                }
            ),
        };
        ensure!(
            values.len() == count,
            "tensor {name:?} has shape {dims:?} ({count} values) but holds {} (truncated?)",
            values.len()
        );
        let bad = values.iter().filter(|v| !v.is_finite()).count();
        ensure!(
            bad == 0,
            "tensor {name:?} holds {bad} NaN or infinite values"
        );
        Ok(Tensor { dims, values })
    }
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}
fn int(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name).map(|a| a.i)
}
fn float(node: &NodeProto, name: &str) -> Option<f32> {
    attr(node, name).map(|a| a.f)
}
fn ints<'a>(node: &'a NodeProto, name: &str) -> Option<&'a [i64]> {
    attr(node, name).map(|a| a.ints.as_slice())
}

/// The first input's `[C, H, W]` (a leading batch axis of any or unknown size is dropped).
fn input_shape(input: &proto::ValueInfoProto) -> Result<Shape> {
    use proto::tensor_shape_proto::dimension::Value;
    let tensor = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(proto::type_proto::Value::TensorType(t)) => t,
        None => bail!("the input {:?} is not a tensor", input.name),
    };
    ensure!(
        tensor.elem_type == data_type::FLOAT,
        "the input {:?} has element type {}; float is needed",
        input.name,
        tensor.elem_type
    );
    let dims: Vec<Option<i64>> = tensor
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(Value::DimValue(v)) => Some(v),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let side = |d: Option<i64>| d.filter(|&v| v > 0).map(|v| v as usize);
    match dims[..] {
        [_, c, h, w] => match (side(c), side(h), side(w)) {
            (Some(c), Some(h), Some(w)) => Ok(Shape::new(c, h, w)),
            _ => bail!(
                "the input {:?} has shape {dims:?}: its channels, height and width must be fixed",
                input.name
            ),
        },
        _ => bail!(
            "the input {:?} has {} axes; [batch, channels, height, width] is needed",
            input.name,
            dims.len()
        ),
    }
}

/// Two equal values from a per-axis attribute, or the default.
fn square(node: &NodeProto, name: &str, default: i64) -> Result<u32> {
    match ints(node, name) {
        None | Some([]) => Ok(default as u32),
        Some(&[a, b]) if a == b => u32::try_from(a)
            .ok()
            .filter(|&v| v <= 1 << 16)
            .with_context(|| format!("{name} {a} is out of range")),
        Some(v) => bail!("{name} {v:?}: only equal values on both axes are taken"),
    }
}

/// Symmetric, equal padding (`pads` is `[top, left, bottom, right]`); no `auto_pad`.
fn padding(node: &NodeProto) -> Result<u32> {
    if let Some(a) = attr(node, "auto_pad") {
        ensure!(
            a.s.is_empty() || a.s == b"NOTSET",
            "auto_pad {}: give explicit pads",
            String::from_utf8_lossy(&a.s)
        );
    }
    match ints(node, "pads") {
        None | Some([]) => Ok(0),
        Some(&[p, q, r, s]) if p == q && q == r && r == s => u32::try_from(p)
            .ok()
            .filter(|&v| v <= 1 << 16)
            .with_context(|| format!("pads {p} are out of range")),
        Some(v) => bail!("pads {v:?}: only the same padding on every side is taken"),
    }
}

fn no_dilation(node: &NodeProto) -> Result<()> {
    match ints(node, "dilations") {
        None => Ok(()),
        Some(d) if d.iter().all(|&v| v == 1) => Ok(()),
        Some(d) => bail!("dilations {d:?} are not supported"),
    }
}

/// `ceil_mode = 1` is taken where it gives the same size as flooring, on both axes.
fn floor_sized(node: &NodeProto, input: Shape, window: u32, stride: u32) -> Result<()> {
    if int(node, "ceil_mode").unwrap_or(0) != 0 {
        let (f, s) = (window as usize, stride.max(1) as usize);
        for n in [input.h, input.w] {
            ensure!(
                n < f || (n - f) % s == 0,
                "ceil_mode 1 adds a partial window here; the core floors"
            );
        }
    }
    Ok(())
}

fn conv(
    node: &NodeProto,
    input: Shape,
    weight: Option<Tensor>,
    bias: Option<Tensor>,
) -> Result<(Layer, Option<LayerParams>)> {
    no_dilation(node)?;
    let weight = weight.context("a Conv without weights")?;
    let groups = int(node, "group").unwrap_or(1);
    let &[out, per_group, kh, kw] = &weight.dims[..] else {
        bail!(
            "weights of shape {:?}; a 2-D convolution's has 4 axes",
            weight.dims
        );
    };
    ensure!(
        kh == kw,
        "a {kh}x{kw} kernel: only square kernels are taken"
    );
    if let Some(shape) = ints(node, "kernel_shape") {
        ensure!(
            shape == [kh as i64, kw as i64],
            "kernel_shape {shape:?} disagrees with the weights' {:?}",
            weight.dims
        );
    }
    ensure!(
        groups >= 1 && per_group as i64 * groups == input.c as i64,
        "weights of shape {:?} in {groups} groups do not fit a {}-channel input",
        weight.dims,
        input.c
    );
    let spec = ConvSpec {
        out_channels: out as u32,
        kernel: kh as u32,
        stride: square(node, "strides", 1)?,
        padding: padding(node)?,
        groups: groups as u32,
    };
    let bias = match bias {
        Some(b) => {
            ensure!(
                b.dims == [out],
                "bias of shape {:?}, expected [{out}]",
                b.dims
            );
            b.values
        }
        None => vec![0.0; out],
    };
    let params = LayerParams {
        weight: weight.values,
        bias,
    };
    Ok((Layer::Conv(spec), Some(params)))
}

/// `Gemm(x, B, C)` with `alpha = beta = 1`, `transA = 0`; `B` stored either way round.
fn gemm(
    node: &NodeProto,
    input: Shape,
    b: Option<Tensor>,
    c: Option<Tensor>,
) -> Result<(Layer, Option<LayerParams>)> {
    ensure!(
        int(node, "transA").unwrap_or(0) == 0,
        "transA = 1 is not supported"
    );
    for (name, value) in [
        ("alpha", float(node, "alpha")),
        ("beta", float(node, "beta")),
    ] {
        if let Some(v) = value {
            ensure!(v == 1.0, "{name} = {v}: only 1 is taken");
        }
    }
    let b = b.context("a Gemm without weights")?;
    let &[rows, cols] = &b.dims[..] else {
        bail!("weights of shape {:?}; a Gemm's have 2 axes", b.dims);
    };
    ensure!(rows > 0 && cols > 0, "weights of shape {:?}", b.dims);
    let inputs = input.len();
    let transposed = int(node, "transB").unwrap_or(0) != 0;
    let (out, k) = if transposed {
        (rows, cols)
    } else {
        (cols, rows)
    };
    ensure!(
        k == inputs,
        "weights of shape {:?} (transB = {}) take {k} inputs, the layer gets {inputs}",
        b.dims,
        transposed as u8
    );
    // PyTorch's layout, [out, in].
    let weight = if transposed {
        b.values
    } else {
        let mut w = vec![0.0; out * k];
        for (i, row) in b.values.chunks_exact(out).enumerate() {
            for (o, &v) in row.iter().enumerate() {
                w[o * k + i] = v;
            }
        }
        w
    };
    let bias = match c {
        Some(c) => {
            ensure!(
                c.values.len() == out && (c.dims == [out] || c.dims == [1, out]),
                "bias of shape {:?}, expected [{out}]",
                c.dims
            );
            c.values
        }
        None => vec![0.0; out],
    };
    let layer = Layer::Linear {
        out_features: out as u32,
    };
    Ok((layer, Some(LayerParams { weight, bias })))
}

fn lrn(node: &NodeProto) -> Result<LrnSpec> {
    let size = int(node, "size").context("an LRN without its size")?;
    ensure!(
        (1..=i64::from(alexnet_core::arch::MAX_LRN_SIZE)).contains(&size) && size % 2 == 1,
        "size {size}: an odd window of at most {} is needed",
        alexnet_core::arch::MAX_LRN_SIZE
    );
    Ok(LrnSpec {
        size: size as u32,
        alpha: float(node, "alpha").unwrap_or(1e-4),
        beta: float(node, "beta").unwrap_or(0.75),
        k: float(node, "bias").unwrap_or(1.0),
        convention: LrnConvention::AlphaOverN,
    })
}

fn pool_window(node: &NodeProto) -> Result<(u32, u32)> {
    no_dilation(node)?;
    ensure!(padding(node)? == 0, "padded pooling is not supported");
    let window = square(node, "kernel_shape", 0)?;
    ensure!(window > 0, "no kernel_shape");
    Ok((window, square(node, "strides", 1)?))
}

fn max_pool(node: &NodeProto, input: Shape) -> Result<PoolSpec> {
    let (window, stride) = pool_window(node)?;
    ensure!(
        int(node, "storage_order").unwrap_or(0) == 0,
        "storage_order 1 is not supported"
    );
    floor_sized(node, input, window, stride)?;
    Ok(PoolSpec { window, stride })
}

/// An average pool whose windows tile the input exactly: PyTorch's adaptive pooling to
/// `input / window`, as `torch.onnx.export` writes `AdaptiveAvgPool2d`.
fn average_pool(node: &NodeProto, input: Shape) -> Result<Layer> {
    let (window, stride) = pool_window(node)?;
    floor_sized(node, input, window, stride)?;
    let w = window as usize;
    ensure!(
        stride == window && input.h.is_multiple_of(w) && input.w.is_multiple_of(w),
        "a {window}x{window} average pool with stride {stride} on {}x{}: only windows that \
         tile the input are taken",
        input.h,
        input.w
    );
    Ok(Layer::AdaptiveAvgPool {
        out_h: (input.h / w) as u32,
        out_w: (input.w / w) as u32,
    })
}

/// Writes an f32 model as ONNX, atomically: the layers as nodes from the input `input`
/// (`[N, C, H, W]`, any batch) to the output `logits` (`[N, classes]`; like
/// [`alexnet_core::Model::forward`], without the final softmax), the weights as initializers
/// named as in safetensors files, and the preprocessing and labels as metadata.
pub fn save(spec: &ModelSpec, path: impl AsRef<Path>) -> Result<()> {
    crate::atomic::write_atomic(path, &to_bytes(spec)?)
}

/// [`save`]'s bytes.
pub fn to_bytes(spec: &ModelSpec) -> Result<Vec<u8>> {
    ensure!(
        spec.quant.is_none(),
        "an int8 model cannot be exported: export the f32 model it was quantized from"
    );
    let arch = spec.arch();
    let mut nodes = Vec::new();
    let mut initializers = Vec::new();
    let mut current = "input".to_string();
    let mut classes = 0;
    for step in arch.walk() {
        let step = step.map_err(|e| anyhow!("{}", alexnet_core::Error::Arch(e)))?;
        let i = step.index;
        let stem = crate::safetensors_io::tensor_stem(&arch, i).unwrap_or_else(|| format!("l{i}"));
        let mut inputs = vec![current.clone()];
        let (op, attributes) = match step.layer {
            Layer::Conv(c) => {
                let p = params(spec, i)?;
                let dims = step.layer.weight_dims(step.input).map(i64::from).to_vec();
                inputs.extend(weights(&mut initializers, &stem, dims, p));
                let (k, s, pad) = (c.kernel as i64, c.stride as i64, c.padding as i64);
                let attrs = vec![
                    ints_attr("kernel_shape", &[k, k]),
                    ints_attr("strides", &[s, s]),
                    ints_attr("pads", &[pad; 4]),
                    ints_attr("dilations", &[1, 1]),
                    int_attr("group", c.groups as i64),
                ];
                ("Conv", attrs)
            }
            Layer::Linear { out_features } => {
                let p = params(spec, i)?;
                let dims = vec![out_features as i64, step.input.len() as i64];
                inputs.extend(weights(&mut initializers, &stem, dims, p));
                classes = out_features;
                ("Gemm", vec![int_attr("transB", 1)])
            }
            Layer::Relu => ("Relu", vec![]),
            Layer::Lrn(l) => {
                let alpha = match l.convention {
                    LrnConvention::AlphaOverN => l.alpha,
                    LrnConvention::Paper => l.alpha * l.size as f32,
                };
                let attrs = vec![
                    int_attr("size", l.size as i64),
                    float_attr("alpha", alpha),
                    float_attr("beta", l.beta),
                    float_attr("bias", l.k),
                ];
                ("LRN", attrs)
            }
            Layer::MaxPool(p) => {
                let (w, s) = (p.window as i64, p.stride as i64);
                let attrs = vec![
                    ints_attr("kernel_shape", &[w, w]),
                    ints_attr("strides", &[s, s]),
                ];
                ("MaxPool", attrs)
            }
            Layer::AdaptiveAvgPool { out_h, out_w } => {
                // Written even where it is the identity (a 1x1 window), as torch.onnx does
                // for torchvision's net, so that the graph reads back as the same net.
                let (h, w) = (step.input.h as u32, step.input.w as u32);
                ensure!(
                    h % out_h == 0 && w % out_w == 0 && h / out_h == w / out_w,
                    "layer {i}: adaptive average pooling from {h}x{w} to {out_h}x{out_w} has \
                     unequal windows, which ONNX's AveragePool cannot express"
                );
                let k = (h / out_h) as i64;
                let attrs = vec![
                    ints_attr("kernel_shape", &[k, k]),
                    ints_attr("strides", &[k, k]),
                ];
                ("AveragePool", attrs)
            }
            Layer::Flatten => ("Flatten", vec![int_attr("axis", 1)]),
            Layer::Dropout { .. } | Layer::Softmax => continue,
        };
        let output = format!("{stem}_{}", op.to_lowercase());
        let output = if nodes.iter().any(|n: &NodeProto| n.output[0] == output) {
            format!("{output}_{i}")
        } else {
            output
        };
        nodes.push(NodeProto {
            input: inputs,
            output: vec![output.clone()],
            name: format!("{op}_{i}"),
            op_type: op.to_string(),
            attribute: attributes,
            ..Default::default()
        });
        current = output;
    }
    ensure!(
        classes > 0,
        "the model has no fully connected layer to give logits"
    );
    // The last node writes the graph's output.
    if let Some(last) = nodes.last_mut() {
        last.output[0] = "logits".to_string();
    }
    let input = arch.input;
    let graph = proto::GraphProto {
        node: nodes,
        name: spec.name.clone(),
        initializer: initializers,
        input: vec![value_info(
            "input",
            &[None, Some(input.c), Some(input.h), Some(input.w)],
        )],
        output: vec![value_info("logits", &[None, Some(classes as usize)])],
        ..Default::default()
    };
    let mut metadata = vec![
        entry(META_ARCH, spec.name.clone()),
        entry(META_PREPROCESS, preprocess_to_json(&spec.preprocess)),
    ];
    if let Some(labels) = &spec.labels {
        metadata.push(entry(META_LABELS, labels.join("\n")));
    }
    let model = proto::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![proto::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "alexnet-mcu".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: metadata,
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

fn params(spec: &ModelSpec, i: usize) -> Result<&LayerParams> {
    spec.params
        .get(i)
        .and_then(Option::as_ref)
        .with_context(|| format!("layer {i} has no f32 weights"))
}

/// Adds a layer's weight and bias as initializers; their names are the node's inputs.
fn weights(
    initializers: &mut Vec<TensorProto>,
    stem: &str,
    dims: Vec<i64>,
    p: &LayerParams,
) -> [String; 2] {
    let dims: Vec<i64> = dims.into_iter().filter(|&d| d != 0).collect();
    let mut tensor = |name: String, dims: Vec<i64>, values: &[f32]| {
        initializers.push(TensorProto {
            dims,
            data_type: data_type::FLOAT,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    };
    [
        tensor(format!("{stem}.weight"), dims, &p.weight),
        tensor(format!("{stem}.bias"), vec![p.bias.len() as i64], &p.bias),
    ]
}

fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}
fn ints_attr(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}
fn float_attr(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}
fn entry(key: &str, value: String) -> proto::StringStringEntryProto {
    proto::StringStringEntryProto {
        key: key.into(),
        value,
    }
}

/// A float tensor's name and shape; `None` axes are named (`N`, the batch).
fn value_info(name: &str, dims: &[Option<usize>]) -> proto::ValueInfoProto {
    use proto::tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => Value::DimValue(*v as i64),
                None => Value::DimParam("N".into()),
            }),
        })
        .collect();
    proto::ValueInfoProto {
        name: name.into(),
        r#type: Some(proto::TypeProto {
            value: Some(proto::type_proto::Value::TensorType(
                proto::type_proto::Tensor {
                    elem_type: data_type::FLOAT,
                    shape: Some(proto::TensorShapeProto { dim }),
                },
            )),
        }),
        ..Default::default()
    }
}

fn preprocess_to_json(p: &PreprocessSpec) -> String {
    let (mean_kind, mean) = match &p.mean {
        MeanSpec::None => ("none", &[][..]),
        MeanSpec::PerChannel(m) => ("per_channel", &m[..]),
        MeanSpec::PerPixel(m) => ("per_pixel", &m[..]),
    };
    serde_json::json!({
        "resize": p.resize,
        "channel_order": match p.channel_order {
            ChannelOrder::Rgb => "rgb",
            ChannelOrder::Bgr => "bgr",
            ChannelOrder::Gray => "gray",
        },
        "pixel_scale": p.pixel_scale,
        "mean_kind": mean_kind,
        "mean": mean,
        "std": p.std,
    })
    .to_string()
}

fn preprocess_from_json(json: &str) -> Result<PreprocessSpec> {
    #[derive(serde::Deserialize)]
    struct Json {
        resize: u32,
        channel_order: String,
        pixel_scale: f32,
        mean_kind: String,
        mean: Vec<f32>,
        std: Option<Vec<f32>>,
    }
    let j: Json = serde_json::from_str(json)?;
    Ok(PreprocessSpec {
        resize: j.resize,
        channel_order: match j.channel_order.as_str() {
            "rgb" => ChannelOrder::Rgb,
            "bgr" => ChannelOrder::Bgr,
            "gray" => ChannelOrder::Gray,
            other => bail!("channel order {other:?}"),
        },
        pixel_scale: j.pixel_scale,
        mean: match j.mean_kind.as_str() {
            "none" => MeanSpec::None,
            "per_channel" => MeanSpec::PerChannel(j.mean),
            "per_pixel" => MeanSpec::PerPixel(j.mean),
            other => bail!("mean kind {other:?}"),
        },
        std: j.std,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alexnet_core::builtin::{CAFFE, MICRO, PAPER, TORCHVISION};

    fn round_trip(arch: &Arch<'_>) -> (ModelSpec, ModelSpec) {
        let spec = crate::init::paper_init(arch, 3).unwrap();
        let back = from_bytes(&to_bytes(&spec).unwrap(), None).unwrap();
        (spec, back)
    }

    /// Every built-in net comes back as itself: the same descriptor (recognized, with its
    /// profile), the same weights bit for bit, the same preprocessing and labels.
    #[test]
    fn built_in_nets_round_trip() {
        for arch in [&MICRO, &PAPER, &CAFFE, &TORCHVISION] {
            let (spec, back) = round_trip(arch);
            assert_eq!(back.layers, spec.layers, "{}", arch.name);
            assert!(
                back.params == spec.params,
                "{}: the weights differ",
                arch.name
            );
            assert_eq!(back.preprocess, spec.preprocess, "{}", arch.name);
            assert!(
                back.labels == spec.labels,
                "{}: the labels differ",
                arch.name
            );
            assert_eq!(back.name, spec.name);
        }
    }

    /// A net that is not built in keeps its own layers, name, preprocessing and labels.
    #[test]
    fn other_nets_round_trip_through_metadata() {
        let mut spec = crate::init::paper_init(&MICRO, 4).unwrap();
        spec.name = "tiny".into();
        spec.layers.remove(2); // the first LRN
        spec.params.remove(2);
        spec.labels = Some((0..10).map(|i| format!("class {i}")).collect());
        spec.preprocess.mean = MeanSpec::PerChannel(vec![0.5]);
        let back = from_bytes(&to_bytes(&spec).unwrap(), None).unwrap();
        assert_eq!(back.name, "tiny");
        assert_eq!(back.preprocess, spec.preprocess);
        assert_eq!(back.labels, spec.labels);
        let weights = |s: &ModelSpec| s.params.iter().flatten().cloned().collect::<Vec<_>>();
        assert_eq!(weights(&back), weights(&spec));
        // Dropout and softmax are not in the graph, so not in what comes back.
        let essential: Vec<Layer> = spec
            .layers
            .iter()
            .filter(|l| !matches!(l, Layer::Dropout { .. } | Layer::Softmax))
            .copied()
            .collect();
        let lrn_alpha = |layers: &[Layer]| {
            layers.iter().find_map(|l| match l {
                Layer::Lrn(l) => Some(l.alpha_effective()),
                _ => None,
            })
        };
        assert_eq!(back.layers.len(), essential.len());
        // Within the one step that `alpha * size` may round by.
        let (a, b) = (
            lrn_alpha(&back.layers).unwrap(),
            lrn_alpha(&essential).unwrap(),
        );
        assert!(a.to_bits().abs_diff(b.to_bits()) <= 1, "{a} {b}");
    }

    #[test]
    fn bad_files_are_named_errors() {
        let spec = crate::init::paper_init(&MICRO, 5).unwrap();
        let bytes = to_bytes(&spec).unwrap();
        let err =
            |b: &[u8], arch: Option<&Arch<'_>>| format!("{:#}", from_bytes(b, arch).unwrap_err());

        let e = err(&bytes[..bytes.len() / 2], None);
        assert!(e.contains("does not decode"), "{e}");
        let e = err(&bytes, Some(&PAPER));
        assert!(e.contains("is not the paper net"), "{e}");

        let int8 = {
            let mut s = spec.clone();
            s.quant = Some(crate::spec::QuantSpec {
                input: alexnet_core::model::QParams {
                    scale: 1.0,
                    zero_point: 0,
                },
                layers: vec![],
                packed_dsp: false,
            });
            s
        };
        assert!(to_bytes(&int8).unwrap_err().to_string().contains("int8"));

        // Edits of the decoded model, each refused with what is wrong.
        let refused = |edit: &dyn Fn(&mut proto::GraphProto), expected: &str| {
            let mut model = proto::ModelProto::decode(&bytes[..]).unwrap();
            edit(model.graph.as_mut().unwrap());
            let e = err(&model.encode_to_vec(), None);
            assert!(e.contains(expected), "{expected}: {e}");
        };
        refused(
            &|g| g.node[1].op_type = "Sigmoid".into(),
            "node 1 (Sigmoid \"Relu_1\") is not supported",
        );
        refused(
            // The same 288 values, in another shape.
            &|g| g.initializer[0].dims = vec![16, 2, 3, 3],
            "[16, 2, 3, 3] in 1 groups do not fit a 1-channel input",
        );
        refused(
            &|g| g.initializer[1].raw_data.truncate(8),
            "holds 2 (truncated?)",
        );
        refused(
            &|g| g.node[2].input[0] = "input".into(),
            "node 2 (LRN \"LRN_2\"): reads \"input\", not the output of the node before it",
        );
        refused(
            &|g| {
                let second = g.input[0].clone();
                g.input.push(proto::ValueInfoProto {
                    name: "mask".into(),
                    ..second
                });
            },
            "the graph has 2 data inputs (input, mask)",
        );
        refused(
            &|g| {
                g.initializer[0].data_location = 1;
                g.initializer[0].raw_data.clear();
            },
            "is stored in an external file",
        );
        refused(
            &|g| g.initializer[0].data_type = data_type::INT8,
            "element type int8 (a quantized model: convert its f32 original)",
        );
        refused(
            &|g| g.node[3].attribute.push(ints_attr("pads", &[1, 1, 1, 1])),
            "padded pooling is not supported",
        );
        refused(
            &|g| g.node[3].attribute.push(int_attr("ceil_mode", 1)),
            "ceil_mode 1 adds a partial window here",
        );
    }
}
