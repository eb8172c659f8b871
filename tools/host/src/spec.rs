//! An owned model description and the blob writer (format in `docs/model-format.md`).

use alexnet_core::arch::{Arch, Layer, Shape, MAX_LAYERS};
use alexnet_core::model::format::{self, dtype, role, tag};
use alexnet_core::model::{ChannelOrder, QParams};
use anyhow::{bail, ensure, Context, Result};

/// The weight and bias of one convolution or linear layer, in PyTorch layouts.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams {
    /// Weights.
    pub weight: Vec<f32>,
    /// Biases.
    pub bias: Vec<f32>,
}

/// What is subtracted from scaled pixels.
#[derive(Clone, Debug, PartialEq)]
pub enum MeanSpec {
    /// Nothing.
    None,
    /// One value per channel.
    PerChannel(Vec<f32>),
    /// A `[C, H, W]` mean image at the input size.
    PerPixel(Vec<f32>),
}

/// Preprocessing metadata, owned (the core's [`alexnet_core::Preprocess`] borrows).
#[derive(Clone, Debug, PartialEq)]
pub struct PreprocessSpec {
    /// Shorter side after resizing (0: none).
    pub resize: u32,
    /// Channel order.
    pub channel_order: ChannelOrder,
    /// Factor on `0..=255` pixels.
    pub pixel_scale: f32,
    /// Mean.
    pub mean: MeanSpec,
    /// Per-channel std.
    pub std: Option<Vec<f32>>,
}

/// The int8 tensors of a convolution or linear layer (`docs/int8-spec.md`).
#[derive(Clone, Debug, PartialEq)]
pub struct QKernelSpec {
    /// Weights in [-127, 127], PyTorch layout.
    pub weight: Vec<i8>,
    /// Biases in units of `s_in * s_w[o]`.
    pub bias: Vec<i32>,
    /// Q31 multipliers.
    pub multiplier: Vec<i32>,
    /// Right shifts in [1, 62].
    pub shift: Vec<i32>,
}

/// A layer's int8 parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct QLayerSpec {
    /// Output scale and zero point.
    pub output: QParams,
    /// Weights and requantization (convolution and linear layers).
    pub kernel: Option<QKernelSpec>,
    /// LRN table and its shift `Q` (LRN layers).
    pub lrn: Option<(Vec<i32>, u32)>,
}

/// All int8 parameters of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantSpec {
    /// Input scale and zero point.
    pub input: QParams,
    /// One per layer.
    pub layers: Vec<QLayerSpec>,
    /// Also write each convolution's weights prepacked for the Cortex-M DSP kernel
    /// (`alexnet_core::int8::packed`, format version 3), where that kernel's buffers hold the
    /// layer. Costs flash (16-bit copies of the convolution weights), saves the device the
    /// unpacking.
    pub packed_dsp: bool,
}

/// Everything a blob holds, owned and editable.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Architecture name (at most 16 bytes of UTF-8).
    pub name: String,
    /// Input shape.
    pub input: Shape,
    /// Layers.
    pub layers: Vec<Layer>,
    /// Parameters, one slot per layer (`Some` exactly for convolutions and linear layers).
    pub params: Vec<Option<LayerParams>>,
    /// Preprocessing.
    pub preprocess: PreprocessSpec,
    /// Class labels, one per output.
    pub labels: Option<Vec<String>>,
    /// int8 parameters: present for int8 models, whose `params` are then all `None`.
    pub quant: Option<QuantSpec>,
}

/// One tensor to place in the blob.
struct PendingTensor<'a> {
    layer: u32,
    role: u32,
    dtype: u32,
    dims: [u32; 4],
    data: &'a [u8],
}

impl<'a> PendingTensor<'a> {
    fn f32(layer: u32, role: u32, dims: [u32; 4], data: &'a [f32]) -> Self {
        PendingTensor {
            layer,
            role,
            dtype: dtype::F32,
            dims,
            data: bytemuck::cast_slice(data),
        }
    }
    fn i32(layer: u32, role: u32, dims: [u32; 4], data: &'a [i32]) -> Self {
        PendingTensor {
            layer,
            role,
            dtype: dtype::I32,
            dims,
            data: bytemuck::cast_slice(data),
        }
    }
}

impl ModelSpec {
    /// An f32 model of a built-in (or any) architecture with these parameters, the
    /// architecture's default preprocessing and its labels ([`crate::profile`]).
    pub fn with_defaults(arch: &Arch<'_>, params: Vec<Option<LayerParams>>) -> Self {
        ModelSpec {
            name: arch.name.to_string(),
            input: arch.input,
            layers: arch.layers.to_vec(),
            params,
            preprocess: crate::profile::preprocess_for(arch),
            labels: crate::profile::labels_for(arch),
            quant: None,
        }
    }

    /// The architecture, borrowed.
    pub fn arch(&self) -> Arch<'_> {
        Arch {
            name: &self.name,
            input: self.input,
            layers: &self.layers,
        }
    }

    /// Serializes to a blob; the result parses with [`alexnet_core::Model::parse`].
    pub fn to_blob(&self) -> Result<Vec<u8>> {
        let arch = self.arch();
        let plan = arch
            .plan()
            .map_err(|e| anyhow::anyhow!("{}", alexnet_core::Error::Arch(e)))?;
        ensure!(
            self.layers.len() <= MAX_LAYERS,
            "more than {MAX_LAYERS} layers"
        );
        ensure!(
            self.name.len() <= format::ARCH_NAME_BYTES && !self.name.contains('\0'),
            "architecture name {:?} must be at most {} bytes without NUL",
            self.name,
            format::ARCH_NAME_BYTES
        );
        ensure!(
            self.params.len() == self.layers.len(),
            "one parameter slot per layer needed"
        );

        // Prepacked DSP weights, owned here so the tensor list can borrow them.
        let packed: Vec<Option<Vec<i16>>> = arch
            .walk()
            .map(|step| {
                let (Some(q), Ok(step)) = (&self.quant, step) else {
                    return None;
                };
                let (Layer::Conv(spec), Some(k)) =
                    (step.layer, q.layers.get(step.index)?.kernel.as_ref())
                else {
                    return None;
                };
                if !q.packed_dsp || !alexnet_core::int8::dsp::packed_fits(&spec, step.input) {
                    return None;
                }
                let geometry = alexnet_core::int8::packed::PackedGeometry::new(&spec, step.input)?;
                Some(geometry.values(&k.weight).collect())
            })
            .collect();
        let mut tensors = Vec::new();
        if let Some(q) = &self.quant {
            ensure!(
                q.layers.len() == self.layers.len(),
                "one int8 record per layer needed"
            );
            ensure!(
                self.params.iter().all(Option::is_none),
                "an int8 model carries no f32 weights"
            );
        }
        for step in arch.walk() {
            let step = step.map_err(|e| anyhow::anyhow!("{}", alexnet_core::Error::Arch(e)))?;
            let i = step.index;
            let name = arch
                .param_layer_name(i)
                .map(|n| n.to_string())
                .unwrap_or_default();
            let wlen = step.layer.weight_len(step.input).unwrap_or(0);
            let out = step.layer.bias_len();
            let dims = step.layer.weight_dims(step.input);
            let vec_dims = [out as u32, 0, 0, 0];
            let li = i as u32;
            if let Some(q) = &self.quant {
                let ql = &q.layers[i];
                match (&ql.kernel, step.layer.has_params()) {
                    (Some(k), true) => {
                        ensure!(
                            k.weight.len() == wlen,
                            "{name}: {} int8 weights, need {wlen}",
                            k.weight.len()
                        );
                        for (what, len) in [
                            ("bias", k.bias.len()),
                            ("multiplier", k.multiplier.len()),
                            ("shift", k.shift.len()),
                        ] {
                            ensure!(len == out, "{name}: {len} int8 {what} values, need {out}");
                        }
                        tensors.push(PendingTensor {
                            layer: li,
                            role: role::WEIGHT,
                            dtype: dtype::I8,
                            dims,
                            data: bytemuck::cast_slice(&k.weight),
                        });
                        tensors.push(PendingTensor::i32(li, role::BIAS, vec_dims, &k.bias));
                        tensors.push(PendingTensor::i32(
                            li,
                            role::MULTIPLIER,
                            vec_dims,
                            &k.multiplier,
                        ));
                        tensors.push(PendingTensor::i32(li, role::SHIFT, vec_dims, &k.shift));
                        if let (Some(Some(values)), Layer::Conv(spec)) = (packed.get(i), step.layer)
                        {
                            let geometry =
                                alexnet_core::int8::packed::PackedGeometry::new(&spec, step.input)
                                    .context("packed layout")?;
                            tensors.push(PendingTensor {
                                layer: li,
                                role: role::PACKED_WEIGHT,
                                dtype: dtype::I16,
                                dims: geometry.dims(),
                                data: bytemuck::cast_slice(values),
                            });
                        }
                    }
                    (None, false) => {}
                    (None, true) => bail!("layer {i} ({name}) has no int8 parameters"),
                    (Some(_), false) => {
                        bail!("layer {i} ({}) takes no parameters", step.layer.kind_name())
                    }
                }
                match (&ql.lrn, step.layer) {
                    (Some((table, _)), Layer::Lrn(_)) => {
                        tensors.push(PendingTensor::i32(
                            li,
                            role::LRN_TABLE,
                            [table.len() as u32, 0, 0, 0],
                            table,
                        ));
                    }
                    (None, Layer::Lrn(_)) => bail!("LRN layer {i} has no int8 table"),
                    (Some(_), _) => {
                        bail!("layer {i} ({}) takes no LRN table", step.layer.kind_name())
                    }
                    (None, _) => {}
                }
                continue;
            }
            match (&self.params[i], step.layer.has_params()) {
                (Some(p), true) => {
                    ensure!(
                        p.weight.len() == wlen,
                        "{name}.weight has {} values, the architecture needs {wlen}",
                        p.weight.len()
                    );
                    ensure!(
                        p.bias.len() == out,
                        "{name}.bias has {} values, the architecture needs {out}",
                        p.bias.len()
                    );
                    tensors.push(PendingTensor::f32(li, role::WEIGHT, dims, &p.weight));
                    tensors.push(PendingTensor::f32(li, role::BIAS, vec_dims, &p.bias));
                }
                (None, false) => {}
                (None, true) => bail!("layer {i} ({name}) has no parameters"),
                (Some(_), false) => {
                    bail!("layer {i} ({}) takes no parameters", step.layer.kind_name())
                }
            }
        }
        let c = self.input.c as u32;
        let prep = &self.preprocess;
        ensure!(
            prep.channel_order.channels() == self.input.c,
            "channel order {:?} does not fit a {}-channel input",
            prep.channel_order,
            self.input.c
        );
        match &prep.mean {
            MeanSpec::None => {}
            MeanSpec::PerChannel(m) => {
                ensure!(
                    m.len() == self.input.c,
                    "mean needs {} values",
                    self.input.c
                );
                tensors.push(PendingTensor::f32(
                    format::MODEL_LEVEL,
                    role::MEAN,
                    [c, 0, 0, 0],
                    m,
                ));
            }
            MeanSpec::PerPixel(m) => {
                ensure!(
                    m.len() == self.input.len(),
                    "mean image needs {} values",
                    self.input.len()
                );
                let dims = [c, self.input.h as u32, self.input.w as u32, 0];
                tensors.push(PendingTensor::f32(format::MODEL_LEVEL, role::MEAN, dims, m));
            }
        }
        if let Some(s) = &prep.std {
            ensure!(s.len() == self.input.c, "std needs {} values", self.input.c);
            tensors.push(PendingTensor::f32(
                format::MODEL_LEVEL,
                role::STD,
                [c, 0, 0, 0],
                s,
            ));
        }
        if let Some(labels) = &self.labels {
            ensure!(
                labels.len() == plan.output.len(),
                "{} labels for {} classes",
                labels.len(),
                plan.output.len()
            );
        }

        // Sections, in order: ARCH, PREP, LABL (optional), TENS; then tensor data.
        let mut sections: Vec<([u8; 4], Vec<u8>)> = vec![
            (tag::ARCH, self.arch_section()),
            (tag::PREP, self.prep_section()),
        ];
        if let Some(labels) = &self.labels {
            sections.push((tag::LABL, labels_section(labels)?));
        }
        if let Some(q) = &self.quant {
            sections.push((tag::QUNT, quant_section(q)));
        }
        let table_len = 4 + tensors.len() * format::TENSOR_ENTRY_BYTES;
        sections.push((tag::TENS, vec![0; table_len])); // filled in once offsets are known

        let mut out =
            vec![0u8; format::HEADER_BYTES + sections.len() * format::SECTION_ENTRY_BYTES];
        let mut section_table = Vec::new();
        for (t, data) in &sections {
            pad_to(&mut out, 8);
            section_table.push((*t, out.len() as u32, data.len() as u32));
            out.extend_from_slice(data);
        }
        let tens_offset = section_table.last().map(|s| s.1 as usize).unwrap_or(0);

        let mut table = Vec::with_capacity(table_len);
        put(&mut table, tensors.len() as u32);
        for t in &tensors {
            pad_to(&mut out, format::TENSOR_ALIGN);
            let offset = out.len();
            out.extend_from_slice(t.data);
            let rank = t.dims.iter().rposition(|&d| d != 0).map_or(0, |r| r + 1) as u32;
            for w in [t.layer, t.role, t.dtype, rank] {
                put(&mut table, w);
            }
            for d in t.dims {
                put(&mut table, d);
            }
            let len = u32::try_from(t.data.len()).context("tensor larger than 4 GiB")?;
            for w in [
                u32::try_from(offset).context("blob larger than 4 GiB")?,
                len,
                0,
                0,
            ] {
                put(&mut table, w);
            }
        }
        out[tens_offset..tens_offset + table_len].copy_from_slice(&table);

        for (i, (t, offset, len)) in section_table.iter().enumerate() {
            let at = format::HEADER_BYTES + i * format::SECTION_ENTRY_BYTES;
            out[at..at + 4].copy_from_slice(t);
            out[at + 4..at + 8].copy_from_slice(&offset.to_le_bytes());
            out[at + 8..at + 12].copy_from_slice(&len.to_le_bytes());
        }
        let total = u32::try_from(out.len()).context("blob larger than 4 GiB")?;
        out[..8].copy_from_slice(&format::MAGIC);
        let version = format::version_for(self.quant.is_some(), packed.iter().any(Option::is_some));
        let version_word = version as u32 | ((format::HEADER_BYTES as u32) << 16);
        out[8..12].copy_from_slice(&version_word.to_le_bytes());
        out[12..16].copy_from_slice(&total.to_le_bytes());
        out[20..24].copy_from_slice(&(sections.len() as u32).to_le_bytes());
        let crc = crc32fast::hash(&out[format::HEADER_BYTES..]);
        out[16..20].copy_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    fn arch_section(&self) -> Vec<u8> {
        let mut s = vec![0u8; format::ARCH_NAME_BYTES];
        s[..self.name.len()].copy_from_slice(self.name.as_bytes());
        for w in [self.input.c, self.input.h, self.input.w, self.layers.len()] {
            put(&mut s, w as u32);
        }
        s.resize(format::ARCH_HEADER_BYTES, 0);
        for l in &self.layers {
            for w in format::encode_layer(l) {
                put(&mut s, w);
            }
        }
        s
    }

    fn prep_section(&self) -> Vec<u8> {
        let p = &self.preprocess;
        let mean_kind = match p.mean {
            MeanSpec::None => 0,
            MeanSpec::PerChannel(_) => 1,
            MeanSpec::PerPixel(_) => 2,
        };
        let mut s = Vec::with_capacity(format::PREP_BYTES);
        for w in [
            p.resize,
            p.channel_order.code(),
            p.pixel_scale.to_bits(),
            mean_kind,
            p.std.is_some() as u32,
        ] {
            put(&mut s, w);
        }
        s.resize(format::PREP_BYTES, 0);
        s
    }

    /// Rebuilds an owned spec from a parsed model (for editing or re-export).
    pub fn from_model(model: &alexnet_core::Model<'_>) -> Self {
        let arch = model.arch();
        let p = model.preprocess();
        ModelSpec {
            name: arch.name.to_string(),
            input: arch.input,
            layers: arch.layers.to_vec(),
            params: (0..arch.layers.len())
                .map(|i| {
                    model.params(i).map(|p| LayerParams {
                        weight: p.weight.to_vec(),
                        bias: p.bias.to_vec(),
                    })
                })
                .collect(),
            preprocess: PreprocessSpec {
                resize: p.resize,
                channel_order: p.channel_order,
                pixel_scale: p.pixel_scale,
                mean: match p.mean {
                    alexnet_core::model::Mean::None => MeanSpec::None,
                    alexnet_core::model::Mean::PerChannel(m) => MeanSpec::PerChannel(m.to_vec()),
                    alexnet_core::model::Mean::PerPixel(m) => MeanSpec::PerPixel(m.to_vec()),
                },
                std: p.std.map(|s| s.to_vec()),
            },
            labels: model.labels().map(|l| {
                (0..l.len())
                    .filter_map(|i| l.get(i))
                    .map(str::to_string)
                    .collect()
            }),
            quant: (model.precision() == alexnet_core::Precision::Int8).then(|| {
                let q = model.quantization();
                QuantSpec {
                    input: q.input,
                    layers: q.layers[..arch.layers.len()]
                        .iter()
                        .zip(arch.layers)
                        .map(|(l, layer)| QLayerSpec {
                            output: l.output,
                            kernel: l.kernel.map(|k| QKernelSpec {
                                weight: k.weight.to_vec(),
                                bias: k.bias.to_vec(),
                                multiplier: k.multiplier.to_vec(),
                                shift: k.shift.to_vec(),
                            }),
                            lrn: matches!(layer, Layer::Lrn(_))
                                .then(|| (l.lrn_table.to_vec(), l.lrn_shift)),
                        })
                        .collect(),
                    packed_dsp: q
                        .layers
                        .iter()
                        .any(|l| l.kernel.is_some_and(|k| k.packed.is_some())),
                }
            }),
        }
    }
}

fn quant_section(q: &QuantSpec) -> Vec<u8> {
    let mut s = Vec::new();
    for w in [
        q.input.scale.to_bits(),
        q.input.zero_point as u32,
        q.layers.len() as u32,
        0,
    ] {
        put(&mut s, w);
    }
    for l in &q.layers {
        let aux = l.lrn.as_ref().map_or(0, |(_, shift)| *shift);
        for w in [l.output.scale.to_bits(), l.output.zero_point as u32, aux, 0] {
            put(&mut s, w);
        }
    }
    s
}

fn labels_section(labels: &[String]) -> Result<Vec<u8>> {
    let mut s = Vec::new();
    put(&mut s, labels.len() as u32);
    let mut offset = 0u32;
    put(&mut s, 0);
    for l in labels {
        offset = offset
            .checked_add(u32::try_from(l.len()).context("label too long")?)
            .context("labels too long")?;
        put(&mut s, offset);
    }
    for l in labels {
        s.extend_from_slice(l.as_bytes());
    }
    Ok(s)
}

fn put(buf: &mut Vec<u8>, word: u32) {
    buf.extend_from_slice(&word.to_le_bytes());
}

fn pad_to(buf: &mut Vec<u8>, align: usize) {
    let len = buf.len().next_multiple_of(align);
    buf.resize(len, 0);
}
