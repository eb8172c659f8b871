//! Parsing and validating a model blob. Everything is checked here, once; afterwards the
//! [`Model`] only hands out views that are known to be in bounds and of the right shape.

use super::format::{self, dtype, role, tag};
use super::labels::{read_u32, Labels};
use super::preprocess::{ChannelOrder, Mean, Preprocess};
use super::{Model, Params};
use crate::arch::{ConvSpec, Layer, Step};
use crate::arch::{Shape, MAX_LAYERS};
use crate::error::Precision;
use crate::error::{ArchError, ArchProblem, Error, TensorRole};
use crate::int8::QKernel;

/// Where the sections of a blob lie.
#[derive(Default)]
struct Sections<'a> {
    arch: Option<&'a [u8]>,
    prep: Option<&'a [u8]>,
    labels: Option<&'a [u8]>,
    tensors: Option<&'a [u8]>,
    quant: Option<&'a [u8]>,
}

/// One validated tensor-table entry.
#[derive(Clone, Copy)]
struct TensorEntry<'a> {
    layer: u32,
    role: u32,
    dtype: u32,
    dims: [u32; 4],
    bytes: &'a [u8],
    offset: usize,
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Model<'_>, Error> {
    if cfg!(target_endian = "big") {
        return Err(Error::BigEndianTarget);
    }
    // Magic first, even on a short file: "not a blob" is a better answer than "truncated".
    let prefix = bytes.len().min(format::MAGIC.len());
    if bytes.get(..prefix) != format::MAGIC.get(..prefix) {
        return Err(Error::BadMagic);
    }
    let header = bytes.get(..format::HEADER_BYTES).ok_or(Error::Truncated {
        what: "header",
        needed: format::HEADER_BYTES,
        available: bytes.len(),
    })?;
    let word = |offset| read_u32(header, offset, "header");
    let version_word = word(8)?;
    let version = (version_word & 0xffff) as u16;
    if !(format::OLDEST_VERSION..=format::VERSION).contains(&version) {
        return Err(Error::UnsupportedVersion {
            found: version,
            newest_supported: format::VERSION,
        });
    }
    let header_bytes = version_word >> 16;
    if header_bytes as usize != format::HEADER_BYTES {
        return Err(Error::BadField {
            field: "header size",
            found: header_bytes,
        });
    }
    let blob_bytes = word(12)? as usize;
    if blob_bytes != bytes.len() {
        return Err(Error::LengthMismatch {
            header: blob_bytes,
            actual: bytes.len(),
        });
    }
    let stored_crc = word(16)?;
    let payload = bytes.get(format::HEADER_BYTES..).unwrap_or(&[]);
    let computed = crc32fast::hash(payload);
    if computed != stored_crc {
        return Err(Error::Checksum {
            stored: stored_crc,
            computed,
        });
    }
    let section_count = word(20)?;
    if section_count as usize > format::MAX_SECTIONS {
        return Err(Error::BadField {
            field: "section count",
            found: section_count,
        });
    }
    for (offset, field) in [(24, "header flags"), (28, "header reserved word")] {
        let v = word(offset)?;
        if v != 0 {
            return Err(Error::BadField { field, found: v });
        }
    }
    let address = bytes.as_ptr() as usize;
    if !address.is_multiple_of(format::BLOB_ALIGN) {
        return Err(Error::Misaligned {
            what: "blob start",
            offset: address,
            align: format::BLOB_ALIGN,
        });
    }

    let sections = read_sections(bytes, section_count as usize, version)?;
    let arch_bytes = sections
        .arch
        .ok_or(Error::MissingSection { tag: tag::ARCH })?;
    let prep_bytes = sections
        .prep
        .ok_or(Error::MissingSection { tag: tag::PREP })?;
    let tensor_bytes = sections
        .tensors
        .ok_or(Error::MissingSection { tag: tag::TENS })?;

    let mut model = read_arch(arch_bytes)?;
    let plan = model.arch().plan()?;
    model.plan = plan;
    if let Some(q) = sections.quant {
        super::quant::read_quant(q, &mut model)?;
    }
    read_tensors(bytes, tensor_bytes, version, &mut model)?;
    model.preprocess = read_prep(prep_bytes, bytes, tensor_bytes, model.input)?;
    if let Some(l) = sections.labels {
        let labels = Labels::parse(l)?;
        if labels.len() != plan.output.len() {
            return Err(Error::LabelCount {
                classes: plan.output.len(),
                labels: labels.len(),
            });
        }
        model.labels = Some(labels);
    }
    Ok(model)
}

fn read_sections(bytes: &[u8], count: usize, version: u16) -> Result<Sections<'_>, Error> {
    let mut sections = Sections::default();
    for i in 0..count {
        let at = format::HEADER_BYTES + i * format::SECTION_ENTRY_BYTES;
        let entry = bytes
            .get(at..at + format::SECTION_ENTRY_BYTES)
            .ok_or(Error::Truncated {
                what: "section table",
                needed: at + format::SECTION_ENTRY_BYTES,
                available: bytes.len(),
            })?;
        let tag_bytes = match entry.get(..4) {
            Some(&[a, b, c, d]) => [a, b, c, d],
            _ => {
                return Err(Error::BadField {
                    field: "section tag",
                    found: 0,
                })
            }
        };
        let offset = read_u32(entry, 4, "section table")? as usize;
        let len = read_u32(entry, 8, "section table")? as usize;
        let reserved = read_u32(entry, 12, "section table")?;
        if reserved != 0 {
            return Err(Error::BadField {
                field: "section reserved word",
                found: reserved,
            });
        }
        let table_end = format::HEADER_BYTES + count * format::SECTION_ENTRY_BYTES;
        let data = offset
            .checked_add(len)
            .filter(|_| offset >= table_end)
            .and_then(|end| bytes.get(offset..end))
            .ok_or(Error::OutOfBounds {
                what: "section",
                offset,
                len,
                blob_len: bytes.len(),
            })?;
        let slot = match tag_bytes {
            tag::ARCH => &mut sections.arch,
            tag::PREP => &mut sections.prep,
            tag::LABL => &mut sections.labels,
            tag::TENS => &mut sections.tensors,
            tag::QUNT if version >= 2 => &mut sections.quant,
            _ => return Err(Error::UnexpectedSection { tag: tag_bytes }),
        };
        if slot.replace(data).is_some() {
            return Err(Error::UnexpectedSection { tag: tag_bytes });
        }
    }
    Ok(sections)
}

fn read_arch(arch: &[u8]) -> Result<Model<'_>, Error> {
    let name_field = arch
        .get(..format::ARCH_NAME_BYTES)
        .ok_or(Error::Truncated {
            what: "ARCH section",
            needed: format::ARCH_HEADER_BYTES,
            available: arch.len(),
        })?;
    let name_len = name_field
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(name_field.len());
    let name = core::str::from_utf8(name_field.get(..name_len).unwrap_or(&[])).map_err(|_| {
        Error::BadUtf8 {
            what: "architecture name",
        }
    })?;
    if name_field.iter().skip(name_len).any(|&b| b != 0) {
        return Err(Error::BadField {
            field: "architecture name padding",
            found: name_len as u32,
        });
    }
    let field = |i: usize| read_u32(arch, format::ARCH_NAME_BYTES + 4 * i, "ARCH section");
    let input = Shape::new(field(0)? as usize, field(1)? as usize, field(2)? as usize);
    let count = field(3)? as usize;
    if count > MAX_LAYERS {
        return Err(ArchError {
            layer: MAX_LAYERS,
            problem: ArchProblem::TooManyLayers,
        }
        .into());
    }
    let expected_len = format::ARCH_HEADER_BYTES + count * format::LAYER_RECORD_BYTES;
    if arch.len() != expected_len {
        return Err(Error::BadField {
            field: "ARCH section length",
            found: arch.len() as u32,
        });
    }
    let mut model = Model::empty(name, input);
    let records = arch.get(format::ARCH_HEADER_BYTES..).unwrap_or(&[]);
    for (i, (slot, rec)) in model
        .layers
        .iter_mut()
        .zip(records.chunks_exact(format::LAYER_RECORD_BYTES))
        .enumerate()
    {
        let mut record = [0u32; 8];
        for (j, w) in record.iter_mut().enumerate() {
            *w = read_u32(rec, 4 * j, "layer record")?;
        }
        *slot = format::decode_layer(&record, i)?;
    }
    model.layer_count = count;
    Ok(model)
}

/// No tensor in this slot.
const EMPTY: u16 = u16::MAX;

fn read_tensors<'a>(
    blob: &'a [u8],
    table: &'a [u8],
    version: u16,
    model: &mut Model<'a>,
) -> Result<(), Error> {
    // Table index of each (layer, role), so that each tensor is validated once.
    let mut slots = [[EMPTY; role::COUNT]; MAX_LAYERS];
    for (index, entry) in tensor_entries(blob, table).enumerate() {
        let entry = entry?;
        if entry.layer == format::MODEL_LEVEL {
            if entry.role == role::MEAN || entry.role == role::STD {
                continue; // checked with the PREP section
            }
            return Err(Error::UnexpectedTensor {
                layer: usize::MAX,
                role: entry.role,
            });
        }
        let layer = entry.layer as usize;
        let unexpected = Error::UnexpectedTensor {
            layer,
            role: entry.role,
        };
        let l = model.layers().get(layer).ok_or(unexpected)?;
        if !role_allowed(l, entry.role, model.precision, version) {
            return Err(unexpected);
        }
        let slot = slots
            .get_mut(layer)
            .and_then(|s| s.get_mut(entry.role as usize))
            .ok_or(unexpected)?;
        if *slot != EMPTY {
            return Err(unexpected);
        }
        *slot = index as u16;
    }
    // A copy of the layer table, so the model can be filled in while walking it.
    let layers = model.layers;
    let arch = crate::Arch {
        name: "",
        input: model.input,
        layers: layers.get(..model.layer_count).unwrap_or(&[]),
    };
    let mut params = [None; MAX_LAYERS];
    for step in arch.walk() {
        let step = step?;
        let i = step.index;
        let slot = slots.get(i).copied().unwrap_or([EMPTY; role::COUNT]);
        let get = |role_code: u32| -> Result<TensorEntry<'a>, Error> {
            let role = TensorRole::from_code(role_code).unwrap_or(TensorRole::Weight);
            let at = slot.get(role_code as usize).copied().unwrap_or(EMPTY);
            if at == EMPTY {
                return Err(Error::MissingTensor { layer: i, role });
            }
            let entry = tensor_entries(blob, table)
                .nth(at as usize)
                .ok_or(Error::MissingTensor { layer: i, role })??;
            let expected = expected_dims(&step, role_code);
            if entry.dims != expected {
                return Err(Error::TensorShape {
                    layer: i,
                    role,
                    expected,
                    found: entry.dims,
                });
            }
            let dtype_ok = match (model.precision, role_code) {
                (Precision::F32, _) => entry.dtype == dtype::F32,
                (Precision::Int8, role::WEIGHT) => entry.dtype == dtype::I8,
                (Precision::Int8, role::PACKED_WEIGHT) => entry.dtype == dtype::I16,
                (Precision::Int8, _) => entry.dtype == dtype::I32,
            };
            if !dtype_ok {
                return Err(Error::TensorDtype {
                    layer: i,
                    role,
                    found: entry.dtype,
                });
            }
            Ok(entry)
        };
        match (model.precision, step.layer.has_params(), step.layer) {
            (Precision::F32, true, _) => {
                let weight = f32s(get(role::WEIGHT)?)?;
                let bias = f32s(get(role::BIAS)?)?;
                if let Some(p) = params.get_mut(i) {
                    *p = Some(Params { weight, bias });
                }
            }
            (Precision::Int8, true, _) => {
                let has_packed = slot
                    .get(role::PACKED_WEIGHT as usize)
                    .is_some_and(|&at| at != EMPTY);
                let packed = match (has_packed, step.layer) {
                    (true, Layer::Conv(_)) => Some(packed_weights(get(role::PACKED_WEIGHT)?)?),
                    _ => None,
                };
                let kernel = QKernel {
                    weight: bytemuck::cast_slice(get(role::WEIGHT)?.bytes),
                    bias: i32s(get(role::BIAS)?)?,
                    multiplier: i32s(get(role::MULTIPLIER)?)?,
                    shift: i32s(get(role::SHIFT)?)?,
                    packed,
                };
                if let (Some(packed), Layer::Conv(spec)) = (packed, step.layer) {
                    check_packed(i, &spec, &step, kernel.weight, packed)?;
                }
                super::quant::check_kernel(i, &step, &kernel)?;
                if let Some(q) = model.quant.layers.get_mut(i) {
                    q.kernel = Some(kernel);
                }
            }
            (Precision::Int8, false, Layer::Lrn(spec)) => {
                let table = i32s(get(role::LRN_TABLE)?)?;
                super::quant::check_lrn_table(i, &spec, table)?;
                if let Some(q) = model.quant.layers.get_mut(i) {
                    q.lrn_table = table;
                    q.lrn_steps_fit = crate::int8::lrn_steps_fit(table);
                }
            }
            _ => {}
        }
    }
    model.params = params;
    Ok(())
}

/// Whether a layer may carry a tensor of this role in a model of this precision and version.
fn role_allowed(layer: &Layer, role_code: u32, precision: Precision, version: u16) -> bool {
    if role_code == role::PACKED_WEIGHT {
        return precision == Precision::Int8
            && matches!(layer, Layer::Conv(_))
            && version >= format::PACKED_VERSION;
    }
    match (precision, layer) {
        (_, Layer::Conv(_) | Layer::Linear { .. }) => match precision {
            Precision::F32 => role_code == role::WEIGHT || role_code == role::BIAS,
            Precision::Int8 => matches!(
                role_code,
                role::WEIGHT | role::BIAS | role::MULTIPLIER | role::SHIFT
            ),
        },
        (Precision::Int8, Layer::Lrn(_)) => role_code == role::LRN_TABLE,
        _ => false,
    }
}

/// Expected dims of a layer's tensor.
fn expected_dims(step: &Step, role_code: u32) -> [u32; 4] {
    match (role_code, step.layer) {
        (role::WEIGHT, _) => step.layer.weight_dims(step.input),
        (role::PACKED_WEIGHT, Layer::Conv(spec)) => {
            crate::int8::packed::PackedGeometry::new(&spec, step.input).map_or([0; 4], |g| g.dims())
        }
        (role::LRN_TABLE, Layer::Lrn(spec)) => [
            crate::int8::lrn_table_len(crate::int8::lrn_max_sum(spec.size)) as u32,
            0,
            0,
            0,
        ],
        _ => [step.layer.bias_len() as u32, 0, 0, 0],
    }
}

fn f32s(entry: TensorEntry<'_>) -> Result<&[f32], Error> {
    bytemuck::try_cast_slice(entry.bytes).map_err(|_| Error::Misaligned {
        what: "tensor data",
        offset: entry.offset,
        align: 4,
    })
}

/// The prepacked weights as i16 (aligned: every tensor starts 64-aligned in a 4-aligned blob).
fn packed_weights(entry: TensorEntry<'_>) -> Result<&[i16], Error> {
    bytemuck::try_cast_slice(entry.bytes).map_err(|_| Error::Misaligned {
        what: "tensor data",
        offset: entry.offset,
        align: 2,
    })
}

/// The packed weights must be exactly the weights in the packed layout: the device must
/// compute what the host computes from the plain weights.
fn check_packed(
    layer: usize,
    spec: &ConvSpec,
    step: &Step,
    weight: &[i8],
    packed: &[i16],
) -> Result<(), Error> {
    let geometry = crate::int8::packed::PackedGeometry::new(spec, step.input);
    let same = geometry.is_some_and(|g| {
        g.len() == packed.len() && g.values(weight).zip(packed).all(|(a, &b)| a == b)
    });
    if same {
        Ok(())
    } else {
        Err(Error::BadQuantization {
            layer,
            what: "the prepacked DSP weights are not the layer's weights in the packed layout",
        })
    }
}

fn i32s(entry: TensorEntry<'_>) -> Result<&[i32], Error> {
    bytemuck::try_cast_slice(entry.bytes).map_err(|_| Error::Misaligned {
        what: "tensor data",
        offset: entry.offset,
        align: 4,
    })
}

/// Iterates the tensor table, validating each entry's codes, bounds and alignment.
fn tensor_entries<'a>(
    blob: &'a [u8],
    table: &'a [u8],
) -> impl Iterator<Item = Result<TensorEntry<'a>, Error>> + 'a {
    let count = read_u32(table, 0, "tensor table");
    let (count, first_err) = match count {
        Ok(c) if 4 + (c as usize).saturating_mul(format::TENSOR_ENTRY_BYTES) == table.len() => {
            (c as usize, None)
        }
        Ok(c) => (
            0,
            Some(Error::BadField {
                field: "tensor count",
                found: c,
            }),
        ),
        Err(e) => (0, Some(e)),
    };
    first_err
        .map(Err)
        .into_iter()
        .chain((0..count).map(move |i| {
            let at = 4 + i * format::TENSOR_ENTRY_BYTES;
            let w = |j: usize| read_u32(table, at + 4 * j, "tensor entry");
            let (layer, role_code, dtype_code, rank) = (w(0)?, w(1)?, w(2)?, w(3)?);
            let dims = [w(4)?, w(5)?, w(6)?, w(7)?];
            let (offset, len) = (w(8)? as usize, w(9)? as usize);
            let reserved = w(10)? | w(11)?;
            let layer_ix = if layer == format::MODEL_LEVEL {
                usize::MAX
            } else {
                layer as usize
            };
            let role = TensorRole::from_code(role_code).ok_or(Error::UnexpectedTensor {
                layer: layer_ix,
                role: role_code,
            })?;
            if reserved != 0 {
                return Err(Error::BadField {
                    field: "tensor reserved words",
                    found: reserved,
                });
            }
            let size = dtype::size(dtype_code).ok_or(Error::TensorDtype {
                layer: layer_ix,
                role,
                found: dtype_code,
            })?;
            if rank == 0 || rank > 4 || dims.iter().skip(rank as usize).any(|&d| d != 0) {
                return Err(Error::BadField {
                    field: "tensor rank",
                    found: rank,
                });
            }
            let elems = dims
                .iter()
                .take(rank as usize)
                .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
                .filter(|&n| n <= crate::arch::MAX_ELEMENTS)
                .ok_or(Error::BadField {
                    field: "tensor dims",
                    found: dims[0],
                })?;
            if elems * size != len {
                return Err(Error::BadField {
                    field: "tensor byte length",
                    found: len as u32,
                });
            }
            if offset % format::TENSOR_ALIGN != 0 {
                return Err(Error::Misaligned {
                    what: "tensor data",
                    offset,
                    align: format::TENSOR_ALIGN,
                });
            }
            let bytes = offset
                .checked_add(len)
                .filter(|_| offset >= format::HEADER_BYTES)
                .and_then(|end| blob.get(offset..end))
                .ok_or(Error::OutOfBounds {
                    what: "tensor data",
                    offset,
                    len,
                    blob_len: blob.len(),
                })?;
            Ok(TensorEntry {
                layer,
                role: role_code,
                dtype: dtype_code,
                dims,
                bytes,
                offset,
            })
        }))
}

fn read_prep<'a>(
    prep: &'a [u8],
    blob: &'a [u8],
    table: &'a [u8],
    input: Shape,
) -> Result<Preprocess<'a>, Error> {
    if prep.len() != format::PREP_BYTES {
        return Err(Error::BadField {
            field: "PREP section length",
            found: prep.len() as u32,
        });
    }
    let w = |i: usize| read_u32(prep, 4 * i, "PREP section");
    let resize = w(0)?;
    let order_code = w(1)?;
    let channel_order = ChannelOrder::from_code(order_code)
        .filter(|o| o.channels() == input.c)
        .ok_or(Error::BadField {
            field: "channel order for the input's channels",
            found: order_code,
        })?;
    let pixel_scale = f32::from_bits(w(2)?);
    if !(pixel_scale.is_finite() && pixel_scale > 0.0) {
        return Err(Error::BadField {
            field: "pixel scale",
            found: w(2)?,
        });
    }
    let mean_kind = w(3)?;
    let has_std = w(4)?;
    let reserved = w(5)? | w(6)? | w(7)?;
    if reserved != 0 {
        return Err(Error::BadField {
            field: "PREP reserved words",
            found: reserved,
        });
    }
    if resize != 0 && (resize as usize) < input.h.max(input.w) {
        return Err(Error::BadField {
            field: "resize (smaller than the input)",
            found: resize,
        });
    }
    let mut mean_data = None;
    let mut std_data = None;
    for entry in tensor_entries(blob, table) {
        let entry = entry?;
        if entry.layer != format::MODEL_LEVEL {
            continue;
        }
        if entry.dtype != dtype::F32 {
            let role = if entry.role == role::MEAN {
                TensorRole::Mean
            } else {
                TensorRole::Std
            };
            return Err(Error::TensorDtype {
                layer: usize::MAX,
                role,
                found: entry.dtype,
            });
        }
        let data = f32s(entry)?;
        let slot = if entry.role == role::MEAN {
            &mut mean_data
        } else {
            &mut std_data
        };
        if slot.replace((entry.dims, data)).is_some() {
            return Err(Error::UnexpectedTensor {
                layer: usize::MAX,
                role: entry.role,
            });
        }
    }
    let c = input.c as u32;
    let mean = match (mean_kind, mean_data) {
        (0, None) => Mean::None,
        (1, Some((dims, data))) if dims == [c, 0, 0, 0] => Mean::PerChannel(data),
        (2, Some((dims, data))) if dims == [c, input.h as u32, input.w as u32, 0] => {
            Mean::PerPixel(data)
        }
        (0, Some(_)) => {
            return Err(Error::UnexpectedTensor {
                layer: usize::MAX,
                role: role::MEAN,
            })
        }
        (1 | 2, None) => {
            return Err(Error::MissingTensor {
                layer: usize::MAX,
                role: TensorRole::Mean,
            })
        }
        (1 | 2, Some((dims, _))) => {
            let expected = if mean_kind == 1 {
                [c, 0, 0, 0]
            } else {
                [c, input.h as u32, input.w as u32, 0]
            };
            return Err(Error::TensorShape {
                layer: usize::MAX,
                role: TensorRole::Mean,
                expected,
                found: dims,
            });
        }
        _ => {
            return Err(Error::BadField {
                field: "mean kind",
                found: mean_kind,
            })
        }
    };
    let std = match (has_std, std_data) {
        (0, None) => None,
        (1, Some((dims, data))) if dims == [c, 0, 0, 0] => Some(data),
        (0, Some(_)) => {
            return Err(Error::UnexpectedTensor {
                layer: usize::MAX,
                role: role::STD,
            })
        }
        (1, None) => {
            return Err(Error::MissingTensor {
                layer: usize::MAX,
                role: TensorRole::Std,
            })
        }
        (1, Some((dims, _))) => {
            return Err(Error::TensorShape {
                layer: usize::MAX,
                role: TensorRole::Std,
                expected: [c, 0, 0, 0],
                found: dims,
            })
        }
        _ => {
            return Err(Error::BadField {
                field: "std flag",
                found: has_std,
            })
        }
    };
    let mean_values = match mean {
        Mean::None => &[][..],
        Mean::PerChannel(m) | Mean::PerPixel(m) => m,
    };
    if mean_values.iter().any(|v| !v.is_finite()) {
        return Err(Error::BadField {
            field: "mean (not finite)",
            found: 0,
        });
    }
    if std
        .unwrap_or(&[])
        .iter()
        .any(|v| !(v.is_finite() && *v > 0.0))
    {
        return Err(Error::BadField {
            field: "std (must be finite and > 0)",
            found: 0,
        });
    }
    Ok(Preprocess {
        resize,
        channel_order,
        pixel_scale,
        mean,
        std,
    })
}
