//! An owned model description and the blob writer (format in `docs/model-format.md`).

use alexnet_core::arch::{Arch, Layer, Shape, Step, MAX_LAYERS};
use alexnet_core::int8::packed::PackedGeometry;
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
    ///
    /// One writer per part of the blob, as the core's parser (`alexnet_core::model::blob`)
    /// reads them: the ARCH, PREP, LABL and QUNT sections, the layers' tensors and the
    /// model-level mean and std; then `assemble` lays them out behind the header and the
    /// section table, with the TENS table last.
    pub fn to_blob(&self) -> Result<Vec<u8>> {
        let classes = self.check_arch()?;
        let packed = self.packed_weights();
        let mut tensors = self.layer_tensors(&packed)?;
        tensors.extend(self.prep_tensors()?);
        let mut sections = vec![
            (tag::ARCH, self.arch_section()),
            (tag::PREP, self.prep_section()),
        ];
        if let Some(labels) = &self.labels {
            sections.push((tag::LABL, labels_section(labels, classes)?));
        }
        if let Some(q) = &self.quant {
            sections.push((tag::QUNT, quant_section(q)));
        }
        let version = format::version_for(self.quant.is_some(), packed.iter().any(Option::is_some));
        assemble(version, sections, &tensors)
    }

    /// Rebuilds an owned spec from a parsed model (for editing or re-export).
    pub fn from_model(model: &alexnet_core::Model<'_>) -> Self {
        let mut spec = Self::without_f32_params(model);
        spec.params = (0..model.arch().layers.len())
            .map(|i| {
                model.params(i).map(|p| LayerParams {
                    weight: p.weight.to_vec(),
                    bias: p.bias.to_vec(),
                })
            })
            .collect();
        spec
    }

    /// [`ModelSpec::from_model`] without copying the f32 weights (every `params` slot
    /// `None`): what a quantizer needs to describe the int8 model it makes from them.
    pub fn without_f32_params(model: &alexnet_core::Model<'_>) -> Self {
        let arch = model.arch();
        let p = model.preprocess();
        ModelSpec {
            name: arch.name.to_string(),
            input: arch.input,
            layers: arch.layers.to_vec(),
            params: vec![None; arch.layers.len()],
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

// ---------------------------------------------------------------------------------------
// The blob writer: one function per part of the blob, in the order the core's parser
// (`alexnet_core::model::blob`) reads them.

/// One tensor to place in the blob: a TENS table entry and its data.
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

/// A layer's place in the walk and the sizes its tensors must have.
struct LayerSlot {
    step: Step,
    /// The layer's parameter name (`conv1`, ...), for errors; empty for layers without.
    name: String,
    /// Weights the architecture gives the layer.
    weight_len: usize,
    /// Output channels or features: the length of every per-channel tensor.
    out: usize,
}

impl LayerSlot {
    fn new(arch: &Arch<'_>, step: Step) -> Self {
        LayerSlot {
            name: arch
                .param_layer_name(step.index)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            weight_len: step.layer.weight_len(step.input).unwrap_or(0),
            out: step.layer.bias_len(),
            step,
        }
    }

    /// The table's layer index.
    fn layer(&self) -> u32 {
        self.step.index as u32
    }

    /// The dims of a per-channel tensor.
    fn vector_dims(&self) -> [u32; 4] {
        [self.out as u32, 0, 0, 0]
    }

    fn weight_dims(&self) -> [u32; 4] {
        self.step.layer.weight_dims(self.step.input)
    }
}

impl ModelSpec {
    /// The checks the header and the ARCH section need (the parser's `read_arch` and
    /// `Arch::plan`); returns the number of classes.
    fn check_arch(&self) -> Result<usize> {
        let plan = self
            .arch()
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
        Ok(plan.output.len())
    }

    /// ARCH: the name, the input shape, the layer count, then one record per layer.
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

    /// PREP: resize, channel order, pixel scale, which mean and whether a std follow (their
    /// values are model-level tensors, [`Self::prep_tensors`]).
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

    /// The model-level tensors PREP announces: the mean (per channel or a `[C, H, W]`
    /// image) and the std.
    fn prep_tensors(&self) -> Result<Vec<PendingTensor<'_>>> {
        let prep = &self.preprocess;
        let (c, h, w) = (
            self.input.c as u32,
            self.input.h as u32,
            self.input.w as u32,
        );
        ensure!(
            prep.channel_order.channels() == self.input.c,
            "channel order {:?} does not fit a {}-channel input",
            prep.channel_order,
            self.input.c
        );
        let mut tensors = Vec::new();
        match &prep.mean {
            MeanSpec::None => {}
            MeanSpec::PerChannel(m) => {
                ensure!(
                    m.len() == self.input.c,
                    "mean needs {} values",
                    self.input.c
                );
                let dims = [c, 0, 0, 0];
                tensors.push(PendingTensor::f32(format::MODEL_LEVEL, role::MEAN, dims, m));
            }
            MeanSpec::PerPixel(m) => {
                ensure!(
                    m.len() == self.input.len(),
                    "mean image needs {} values",
                    self.input.len()
                );
                let dims = [c, h, w, 0];
                tensors.push(PendingTensor::f32(format::MODEL_LEVEL, role::MEAN, dims, m));
            }
        }
        if let Some(s) = &prep.std {
            ensure!(s.len() == self.input.c, "std needs {} values", self.input.c);
            let dims = [c, 0, 0, 0];
            tensors.push(PendingTensor::f32(format::MODEL_LEVEL, role::STD, dims, s));
        }
        Ok(tensors)
    }

    /// Each convolution's weights in the DSP kernel's packed layout, where the spec asks
    /// for them and the kernel's buffers hold the layer; owned here so the tensor list can
    /// borrow them.
    fn packed_weights(&self) -> Vec<Option<Vec<i16>>> {
        let Some(q) = self.quant.as_ref().filter(|q| q.packed_dsp) else {
            return vec![None; self.layers.len()];
        };
        self.arch()
            .walk()
            .map(|step| {
                let step = step.ok()?;
                let (Layer::Conv(spec), Some(k)) =
                    (step.layer, q.layers.get(step.index)?.kernel.as_ref())
                else {
                    return None;
                };
                if !alexnet_core::int8::packed::packed_fits(&spec, step.input) {
                    return None;
                }
                let geometry = PackedGeometry::new(&spec, step.input)?;
                Some(geometry.values(&k.weight).collect())
            })
            .collect()
    }

    /// Every layer's tensors, in layer order: the f32 weights and biases, or the int8
    /// kernels and LRN tables (the parser's `read_tensors`).
    fn layer_tensors<'a>(
        &'a self,
        packed: &'a [Option<Vec<i16>>],
    ) -> Result<Vec<PendingTensor<'a>>> {
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
        let arch = self.arch();
        let mut tensors = Vec::new();
        for step in arch.walk() {
            let step = step.map_err(|e| anyhow::anyhow!("{}", alexnet_core::Error::Arch(e)))?;
            let slot = LayerSlot::new(&arch, step);
            match &self.quant {
                Some(q) => {
                    let packed = packed.get(step.index).and_then(Option::as_deref);
                    int8_layer_tensors(&slot, &q.layers[step.index], packed, &mut tensors)?
                }
                None => f32_layer_tensors(&slot, self.params[step.index].as_ref(), &mut tensors)?,
            }
        }
        Ok(tensors)
    }
}

/// An f32 layer's weight and bias.
fn f32_layer_tensors<'a>(
    slot: &LayerSlot,
    params: Option<&'a LayerParams>,
    tensors: &mut Vec<PendingTensor<'a>>,
) -> Result<()> {
    let (i, name, wlen, out) = (slot.step.index, &slot.name, slot.weight_len, slot.out);
    match (params, slot.step.layer.has_params()) {
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
            let li = slot.layer();
            tensors.push(PendingTensor::f32(
                li,
                role::WEIGHT,
                slot.weight_dims(),
                &p.weight,
            ));
            tensors.push(PendingTensor::f32(
                li,
                role::BIAS,
                slot.vector_dims(),
                &p.bias,
            ));
        }
        (None, false) => {}
        (None, true) => bail!("layer {i} ({name}) has no parameters"),
        (Some(_), false) => {
            bail!(
                "layer {i} ({}) takes no parameters",
                slot.step.layer.kind_name()
            )
        }
    }
    Ok(())
}

/// An int8 layer's kernel (weights, bias, multipliers, shifts, and the prepacked weights
/// when there are some) or LRN table.
fn int8_layer_tensors<'a>(
    slot: &LayerSlot,
    ql: &'a QLayerSpec,
    packed: Option<&'a [i16]>,
    tensors: &mut Vec<PendingTensor<'a>>,
) -> Result<()> {
    let (i, name, wlen, out) = (slot.step.index, &slot.name, slot.weight_len, slot.out);
    let (li, layer) = (slot.layer(), slot.step.layer);
    match (&ql.kernel, layer.has_params()) {
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
            let vec_dims = slot.vector_dims();
            tensors.push(PendingTensor {
                layer: li,
                role: role::WEIGHT,
                dtype: dtype::I8,
                dims: slot.weight_dims(),
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
            if let (Some(values), Layer::Conv(spec)) = (packed, layer) {
                let geometry =
                    PackedGeometry::new(&spec, slot.step.input).context("packed layout")?;
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
        (Some(_), false) => bail!("layer {i} ({}) takes no parameters", layer.kind_name()),
    }
    match (&ql.lrn, layer) {
        (Some((table, _)), Layer::Lrn(_)) => {
            let dims = [table.len() as u32, 0, 0, 0];
            tensors.push(PendingTensor::i32(li, role::LRN_TABLE, dims, table));
        }
        (None, Layer::Lrn(_)) => bail!("LRN layer {i} has no int8 table"),
        (Some(_), _) => bail!("layer {i} ({}) takes no LRN table", layer.kind_name()),
        (None, _) => {}
    }
    Ok(())
}

/// LABL: the label count, `count + 1` end offsets into the text (starting with 0), then
/// the labels' UTF-8 back to back.
fn labels_section(labels: &[String], classes: usize) -> Result<Vec<u8>> {
    ensure!(
        labels.len() == classes,
        "{} labels for {classes} classes",
        labels.len()
    );
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

/// QUNT: the input's scale and zero point and the layer count, then per layer its output's
/// scale and zero point and the LRN shift (the tables are tensors).
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

/// The whole blob: the header, the section table, the sections (each 8-aligned, TENS last
/// with the tensor table), then the tensors' data (each [`format::TENSOR_ALIGN`]-aligned).
fn assemble(
    version: u16,
    mut sections: Vec<([u8; 4], Vec<u8>)>,
    tensors: &[PendingTensor<'_>],
) -> Result<Vec<u8>> {
    let table_len = 4 + tensors.len() * format::TENSOR_ENTRY_BYTES;
    // Filled in once the data's offsets are known.
    sections.push((tag::TENS, vec![0; table_len]));
    let mut out = vec![0u8; format::HEADER_BYTES + sections.len() * format::SECTION_ENTRY_BYTES];
    let mut places = Vec::with_capacity(sections.len());
    for (_, data) in &sections {
        pad_to(&mut out, 8);
        places.push((out.len(), data.len()));
        out.extend_from_slice(data);
    }
    let tens_offset = out.len() - table_len;
    let table = tensor_data(&mut out, tensors)?;
    out[tens_offset..tens_offset + table_len].copy_from_slice(&table);
    section_table(&mut out, &sections, &places);
    header(&mut out, version, sections.len())?;
    Ok(out)
}

/// Appends each tensor's data to `out`, aligned; returns the TENS section: the count, then
/// per tensor its layer, role, dtype, rank, four dims, offset, length and two zero words.
fn tensor_data(out: &mut Vec<u8>, tensors: &[PendingTensor<'_>]) -> Result<Vec<u8>> {
    let mut table = Vec::with_capacity(4 + tensors.len() * format::TENSOR_ENTRY_BYTES);
    put(&mut table, tensors.len() as u32);
    for t in tensors {
        pad_to(out, format::TENSOR_ALIGN);
        let offset = u32::try_from(out.len()).context("blob larger than 4 GiB")?;
        out.extend_from_slice(t.data);
        let rank = t.dims.iter().rposition(|&d| d != 0).map_or(0, |r| r + 1) as u32;
        let len = u32::try_from(t.data.len()).context("tensor larger than 4 GiB")?;
        for w in [t.layer, t.role, t.dtype, rank]
            .into_iter()
            .chain(t.dims)
            .chain([offset, len, 0, 0])
        {
            put(&mut table, w);
        }
    }
    Ok(table)
}

/// The section table after the header: per section its tag, offset and length (and a zero
/// word, already there).
fn section_table(out: &mut [u8], sections: &[([u8; 4], Vec<u8>)], places: &[(usize, usize)]) {
    for (i, ((tag, _), &(offset, len))) in sections.iter().zip(places).enumerate() {
        let at = format::HEADER_BYTES + i * format::SECTION_ENTRY_BYTES;
        out[at..at + 4].copy_from_slice(tag);
        out[at + 4..at + 8].copy_from_slice(&(offset as u32).to_le_bytes());
        out[at + 8..at + 12].copy_from_slice(&(len as u32).to_le_bytes());
    }
}

/// The header, written last because it holds the blob's length and the CRC-32 of all that
/// follows it: magic, version and header size, length, CRC, section count (flags and the
/// reserved word stay zero).
fn header(out: &mut [u8], version: u16, sections: usize) -> Result<()> {
    let total = u32::try_from(out.len()).context("blob larger than 4 GiB")?;
    out[..8].copy_from_slice(&format::MAGIC);
    let version_word = version as u32 | ((format::HEADER_BYTES as u32) << 16);
    out[8..12].copy_from_slice(&version_word.to_le_bytes());
    out[12..16].copy_from_slice(&total.to_le_bytes());
    out[20..24].copy_from_slice(&(sections as u32).to_le_bytes());
    let crc = crc32fast::hash(&out[format::HEADER_BYTES..]);
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn put(buf: &mut Vec<u8>, word: u32) {
    buf.extend_from_slice(&word.to_le_bytes());
}

fn pad_to(buf: &mut Vec<u8>, align: usize) {
    let len = buf.len().next_multiple_of(align);
    buf.resize(len, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize::{self, Method};
    use crate::BlobFile;
    use alexnet_core::builtin::MICRO;

    /// The micro net from a fixed seed, as f32 with the default preprocessing (per-channel
    /// mean, std, labels) and as the other f32 options (a per-pixel mean, no std, no labels).
    fn f32_specs() -> [ModelSpec; 2] {
        let spec = crate::init::paper_init(&MICRO, 11).unwrap();
        let mut other = spec.clone();
        other.preprocess.mean = MeanSpec::PerPixel((0..28 * 28).map(|i| i as f32 / 1e3).collect());
        other.preprocess.std = None;
        other.labels = None;
        [spec, other]
    }

    /// `f32` quantized on two fixed synthetic inputs, without and with prepacked DSP weights.
    fn int8_specs(f32: &ModelSpec) -> [ModelSpec; 2] {
        let file = BlobFile::from_bytes(&f32.to_blob().unwrap(), "micro");
        let model = file.model().unwrap();
        let inputs: Vec<Vec<f32>> = (0..2)
            .map(|k| {
                (0..28 * 28)
                    .map(|i| ((i * 7 + k * 13) % 29) as f32 / 10.0 - 1.0)
                    .collect()
            })
            .collect();
        let cal = quantize::calibrate(&model, &inputs, |_| {}).unwrap();
        let (plain, _) = quantize::quantize(&model, &cal, Method::MinMax).unwrap();
        let mut packed = plain.clone();
        packed.quant.as_mut().unwrap().packed_dsp = true;
        [plain, packed]
    }

    /// (length, CRC-32 of every byte) of each spec's blob, in the order f32 default, f32
    /// other, int8, int8 packed, as the writer wrote them before it was split into one writer
    /// per section. A change here is a format change (the golden blob test in `tests/` must
    /// change with it), or for the int8 blobs a change of the f32 numbers their calibration
    /// ran on: version 2 of the f32 contract (the LRN's power by square roots) moved their
    /// activation ranges, so their scales and bytes (0x5dccf75f and 0xa57a2c12 before).
    const FINGERPRINTS: [(usize, u32); 4] = [
        (1075716, 0x02417645),
        (1078656, 0xd2438e46),
        (285124, 0xeb7c3b90),
        (553668, 0xa3f99693),
    ];

    #[test]
    fn written_blobs_parse_round_trip_and_keep_their_bytes() {
        let [f32, other] = f32_specs();
        let [int8, packed] = int8_specs(&f32);
        let mut got = Vec::new();
        for spec in [f32, other, int8, packed] {
            let bytes = spec.to_blob().unwrap();
            let file = BlobFile::from_bytes(&bytes, "spec");
            let model = file.model().unwrap();
            assert_eq!(ModelSpec::from_model(&model), spec);
            got.push((bytes.len(), crc32fast::hash(&bytes)));
        }
        assert_eq!(got, FINGERPRINTS);
    }

    #[test]
    fn specs_the_parser_would_refuse_are_not_written() {
        let [f32, _] = f32_specs();
        let [int8, _] = int8_specs(&f32);
        let edit = |base: &ModelSpec, f: &dyn Fn(&mut ModelSpec)| {
            let mut s = base.clone();
            f(&mut s);
            s
        };
        fn qlayer(s: &mut ModelSpec, i: usize) -> &mut QLayerSpec {
            &mut s.quant.as_mut().unwrap().layers[i]
        }
        let cases: Vec<(ModelSpec, &[&str])> = vec![
            (
                edit(&f32, &|s| s.name = "a name over sixteen bytes".into()),
                &["architecture name"],
            ),
            (
                edit(&f32, &|s| s.params.truncate(3)),
                &["one parameter slot per layer"],
            ),
            (
                edit(&f32, &|s| {
                    s.params[0].as_mut().unwrap().weight.pop();
                }),
                &["conv1.weight has 287 values, the architecture needs 288"],
            ),
            (
                edit(&f32, &|s| s.params[0].as_mut().unwrap().bias.push(0.0)),
                &["conv1.bias has 33 values, the architecture needs 32"],
            ),
            (
                edit(&f32, &|s| s.params[0] = None),
                &["layer 0 (conv1) has no parameters"],
            ),
            (
                edit(&f32, &|s| s.params[1] = s.params[0].clone()),
                &["layer 1", "takes no parameters"],
            ),
            (
                edit(&f32, &|s| s.preprocess.channel_order = ChannelOrder::Rgb),
                &["does not fit a 1-channel input"],
            ),
            (
                edit(&f32, &|s| {
                    s.preprocess.mean = MeanSpec::PerChannel(vec![0.0; 3])
                }),
                &["mean needs 1 values"],
            ),
            (
                edit(&f32, &|s| {
                    s.preprocess.mean = MeanSpec::PerPixel(vec![0.0; 3])
                }),
                &["mean image needs 784 values"],
            ),
            (
                edit(&f32, &|s| s.preprocess.std = Some(vec![])),
                &["std needs 1 values"],
            ),
            (
                edit(&f32, &|s| s.labels = Some(vec!["a".into(); 3])),
                &["3 labels for 10 classes"],
            ),
            (
                edit(&int8, &|s| {
                    s.quant.as_mut().unwrap().layers.pop();
                }),
                &["one int8 record per layer"],
            ),
            (
                edit(&int8, &|s| s.params = f32.params.clone()),
                &["an int8 model carries no f32 weights"],
            ),
            (
                edit(&int8, &|s| qlayer(s, 4).kernel = None),
                &["layer 4 (conv2) has no int8 parameters"],
            ),
            (
                edit(&int8, &|s| {
                    qlayer(s, 4).kernel.as_mut().unwrap().shift.clear()
                }),
                &["conv2: 0 int8 shift values, need 64"],
            ),
            (
                edit(&int8, &|s| qlayer(s, 2).lrn = None),
                &["LRN layer 2 has no int8 table"],
            ),
            (
                edit(&int8, &|s| qlayer(s, 3).lrn = qlayer(s, 2).lrn.clone()),
                &["layer 3", "takes no LRN table"],
            ),
        ];
        for (spec, needles) in cases {
            let e = format!("{:#}", spec.to_blob().unwrap_err());
            for n in needles {
                assert!(e.contains(n), "{e:?} lacks {n:?}");
            }
        }
    }
}
