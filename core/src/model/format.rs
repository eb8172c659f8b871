//! Constants and record encodings of the model blob (`docs/model-format.md`). The host's blob
//! writer uses these too, so reader and writer cannot drift apart.

use crate::arch::{ConvSpec, Layer, LrnConvention, LrnSpec, PoolSpec};
use crate::error::{ArchError, ArchProblem};

/// First eight bytes of every blob.
pub const MAGIC: [u8; 8] = *b"ALXNBLOB";
/// The newest format version this build reads and writes (2 added int8 models, 3 the
/// prepacked DSP weights of role 7; older blobs are still read). Writers use the lowest
/// version that can hold a blob ([`version_for`]), so older readers keep reading what they can.
pub const VERSION: u16 = 3;
/// The first version with int8 models.
pub const INT8_VERSION: u16 = 2;
/// The first version with prepacked DSP weights.
pub const PACKED_VERSION: u16 = 3;

/// The version a blob with these contents is written as.
pub const fn version_for(int8: bool, packed: bool) -> u16 {
    if packed {
        PACKED_VERSION
    } else if int8 {
        INT8_VERSION
    } else {
        // Version 1 and 2 f32 blobs are laid out identically; 2 has been written since int8.
        INT8_VERSION
    }
}
/// The oldest version this build reads.
pub const OLDEST_VERSION: u16 = 1;
/// Size of the fixed header.
pub const HEADER_BYTES: usize = 32;
/// Size of one section-table entry.
pub const SECTION_ENTRY_BYTES: usize = 16;
/// Size of the QUNT section's fixed part (input scale, input zero point, layer count, 0).
pub const QUNT_HEADER_BYTES: usize = 16;
/// Size of one QUNT layer record (output scale, output zero point, aux, 0).
pub const QUNT_RECORD_BYTES: usize = 16;
/// Most sections a blob may have.
pub const MAX_SECTIONS: usize = 16;
/// Size of the ARCH section's fixed part (name, input shape, layer count).
pub const ARCH_HEADER_BYTES: usize = 32;
/// Bytes of the ARCH name field (UTF-8, zero-padded).
pub const ARCH_NAME_BYTES: usize = 16;
/// Size of one layer record.
pub const LAYER_RECORD_BYTES: usize = 32;
/// Size of the PREP section.
pub const PREP_BYTES: usize = 32;
/// Size of one tensor-table entry.
pub const TENSOR_ENTRY_BYTES: usize = 48;
/// Every tensor's data starts at a multiple of this offset from the blob's start.
pub const TENSOR_ALIGN: usize = 64;
/// Alignment the blob's start must have in memory for zero-copy f32 views.
pub const BLOB_ALIGN: usize = 4;
/// Layer index of tensors that belong to the model, not a layer (mean, std).
pub const MODEL_LEVEL: u32 = u32::MAX;

/// Section tags.
pub mod tag {
    /// Architecture descriptor (required).
    pub const ARCH: [u8; 4] = *b"ARCH";
    /// Preprocessing metadata (required).
    pub const PREP: [u8; 4] = *b"PREP";
    /// Class labels (optional).
    pub const LABL: [u8; 4] = *b"LABL";
    /// Tensor table (required).
    pub const TENS: [u8; 4] = *b"TENS";
    /// Quantization parameters (version 2; present exactly in int8 models).
    pub const QUNT: [u8; 4] = *b"QUNT";
}

/// Tensor data types.
pub mod dtype {
    /// IEEE-754 binary32, little-endian.
    pub const F32: u32 = 0;
    /// Signed 8-bit integer.
    pub const I8: u32 = 1;
    /// Signed 32-bit integer, little-endian.
    pub const I32: u32 = 2;
    /// Signed 16-bit integer, little-endian (version 3: prepacked DSP weights).
    pub const I16: u32 = 3;

    /// Bytes per element of a dtype code.
    pub const fn size(code: u32) -> Option<usize> {
        match code {
            F32 | I32 => Some(4),
            I16 => Some(2),
            I8 => Some(1),
            _ => None,
        }
    }
}

/// Tensor role codes.
pub mod role {
    /// Weights.
    pub const WEIGHT: u32 = 0;
    /// Biases.
    pub const BIAS: u32 = 1;
    /// Preprocessing mean.
    pub const MEAN: u32 = 2;
    /// Preprocessing std.
    pub const STD: u32 = 3;
    /// int8: Q31 requantization multipliers, one per output channel (i32).
    pub const MULTIPLIER: u32 = 4;
    /// int8: requantization right shifts, one per output channel (i32).
    pub const SHIFT: u32 = 5;
    /// int8: an LRN layer's table (i32).
    pub const LRN_TABLE: u32 = 6;
    /// int8 convolutions, optional (version 3): the weights prepacked for the Cortex-M DSP
    /// kernel (i16, `alexnet_core::int8::packed`).
    pub const PACKED_WEIGHT: u32 = 7;
    /// Number of role codes.
    pub const COUNT: usize = 8;
}

/// Layer kind codes of the layer records.
pub mod kind {
    /// Convolution: out_channels, kernel, stride, padding, groups.
    pub const CONV: u32 = 1;
    /// ReLU.
    pub const RELU: u32 = 2;
    /// LRN: size, alpha bits, beta bits, k bits, convention (0 paper, 1 alpha/n).
    pub const LRN: u32 = 3;
    /// Max pool: window, stride.
    pub const MAX_POOL: u32 = 4;
    /// Adaptive average pool: out_h, out_w.
    pub const ADAPTIVE_AVG_POOL: u32 = 5;
    /// Flatten.
    pub const FLATTEN: u32 = 6;
    /// Linear: out_features.
    pub const LINEAR: u32 = 7;
    /// Dropout: p bits.
    pub const DROPOUT: u32 = 8;
    /// Softmax.
    pub const SOFTMAX: u32 = 9;
}

/// A layer record: the kind code followed by seven fields; unused fields are zero.
pub type LayerRecord = [u32; 8];

/// Encodes a layer as its record.
pub fn encode_layer(layer: &Layer) -> LayerRecord {
    match *layer {
        Layer::Conv(c) => [
            kind::CONV,
            c.out_channels,
            c.kernel,
            c.stride,
            c.padding,
            c.groups,
            0,
            0,
        ],
        Layer::Relu => [kind::RELU, 0, 0, 0, 0, 0, 0, 0],
        Layer::Lrn(l) => {
            let convention = match l.convention {
                LrnConvention::Paper => 0,
                LrnConvention::AlphaOverN => 1,
            };
            let (a, b, k) = (l.alpha.to_bits(), l.beta.to_bits(), l.k.to_bits());
            [kind::LRN, l.size, a, b, k, convention, 0, 0]
        }
        Layer::MaxPool(p) => [kind::MAX_POOL, p.window, p.stride, 0, 0, 0, 0, 0],
        Layer::AdaptiveAvgPool { out_h, out_w } => {
            [kind::ADAPTIVE_AVG_POOL, out_h, out_w, 0, 0, 0, 0, 0]
        }
        Layer::Flatten => [kind::FLATTEN, 0, 0, 0, 0, 0, 0, 0],
        Layer::Linear { out_features } => [kind::LINEAR, out_features, 0, 0, 0, 0, 0, 0],
        Layer::Dropout { p } => [kind::DROPOUT, p.to_bits(), 0, 0, 0, 0, 0, 0],
        Layer::Softmax => [kind::SOFTMAX, 0, 0, 0, 0, 0, 0, 0],
    }
}

/// Decodes a layer record; `index` only labels the error. Shapes are checked later, by
/// [`crate::Arch::plan`].
pub fn decode_layer(record: &LayerRecord, index: usize) -> Result<Layer, ArchError> {
    let err = |problem| ArchError {
        layer: index,
        problem,
    };
    let [code, a, b, c, d, e, f, g] = *record;
    // Number of meaningful fields per kind; the rest must be zero.
    let (layer, used) = match code {
        kind::CONV => (
            Layer::Conv(ConvSpec {
                out_channels: a,
                kernel: b,
                stride: c,
                padding: d,
                groups: e,
            }),
            5,
        ),
        kind::RELU => (Layer::Relu, 0),
        kind::LRN => {
            let convention = match e {
                0 => LrnConvention::Paper,
                1 => LrnConvention::AlphaOverN,
                _ => return Err(err(ArchProblem::BadConstant)),
            };
            let spec = LrnSpec {
                size: a,
                alpha: f32::from_bits(b),
                beta: f32::from_bits(c),
                k: f32::from_bits(d),
                convention,
            };
            (Layer::Lrn(spec), 5)
        }
        kind::MAX_POOL => (
            Layer::MaxPool(PoolSpec {
                window: a,
                stride: b,
            }),
            2,
        ),
        kind::ADAPTIVE_AVG_POOL => (Layer::AdaptiveAvgPool { out_h: a, out_w: b }, 2),
        kind::FLATTEN => (Layer::Flatten, 0),
        kind::LINEAR => (Layer::Linear { out_features: a }, 1),
        kind::DROPOUT => (
            Layer::Dropout {
                p: f32::from_bits(a),
            },
            1,
        ),
        kind::SOFTMAX => (Layer::Softmax, 0),
        _ => return Err(err(ArchProblem::UnknownLayerKind)),
    };
    if [a, b, c, d, e, f, g].iter().skip(used).any(|&x| x != 0) {
        return Err(err(ArchProblem::NonZeroReserved));
    }
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::ALL;

    #[test]
    fn every_builtin_layer_round_trips() {
        for arch in ALL {
            for (i, layer) in arch.layers.iter().enumerate() {
                assert_eq!(decode_layer(&encode_layer(layer), i), Ok(*layer));
            }
        }
    }

    #[test]
    fn unknown_kinds_and_stray_fields_are_refused() {
        assert_eq!(
            decode_layer(&[99, 0, 0, 0, 0, 0, 0, 0], 3),
            Err(ArchError {
                layer: 3,
                problem: ArchProblem::UnknownLayerKind
            })
        );
        assert_eq!(
            decode_layer(&[kind::RELU, 1, 0, 0, 0, 0, 0, 0], 0),
            Err(ArchError {
                layer: 0,
                problem: ArchProblem::NonZeroReserved
            })
        );
    }
}
