//! Every way the core can refuse its input, as values that say what was wrong.

use core::fmt;

/// Which tensor of a layer (or of the model) an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TensorRole {
    /// Convolution kernels `[out, in/groups, k, k]` or a linear layer's `[out, in]`.
    Weight,
    /// One value per output channel or feature.
    Bias,
    /// Preprocessing mean: per channel `[C]` or per pixel `[C, H, W]`.
    Mean,
    /// Preprocessing standard deviation, per channel `[C]`.
    Std,
    /// int8 requantization multipliers.
    Multiplier,
    /// int8 requantization shifts.
    Shift,
    /// int8 LRN table.
    LrnTable,
    /// int8 convolution weights prepacked for the DSP kernel.
    PackedWeight,
}

impl TensorRole {
    /// Short name used in tensor names (`conv2.weight`).
    pub const fn name(self) -> &'static str {
        match self {
            TensorRole::Weight => "weight",
            TensorRole::Bias => "bias",
            TensorRole::Mean => "mean",
            TensorRole::Std => "std",
            TensorRole::Multiplier => "multiplier",
            TensorRole::Shift => "shift",
            TensorRole::LrnTable => "lrn_table",
            TensorRole::PackedWeight => "packed_weight",
        }
    }

    /// The role for a blob role code.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(TensorRole::Weight),
            1 => Some(TensorRole::Bias),
            2 => Some(TensorRole::Mean),
            3 => Some(TensorRole::Std),
            4 => Some(TensorRole::Multiplier),
            5 => Some(TensorRole::Shift),
            6 => Some(TensorRole::LrnTable),
            7 => Some(TensorRole::PackedWeight),
            _ => None,
        }
    }
}

/// What is wrong with an architecture descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ArchProblem {
    /// The descriptor has no layers.
    NoLayers,
    /// More layers than [`crate::arch::MAX_LAYERS`].
    TooManyLayers,
    /// A dimension is zero.
    ZeroDimension,
    /// A dimension or element count exceeds [`crate::arch::MAX_ELEMENTS`].
    TooLarge,
    /// The kernel or pooling window is larger than the padded input.
    WindowLargerThanInput,
    /// Padding must be smaller than the kernel.
    PaddingNotSmallerThanKernel,
    /// Groups must divide both the input and the output channels.
    GroupsDoNotDivideChannels,
    /// LRN size must be odd and at most [`crate::arch::MAX_LRN_SIZE`].
    BadLrnSize,
    /// An LRN or dropout constant is not finite or out of its range.
    BadConstant,
    /// Adaptive pooling to a size larger than its input is not supported.
    AdaptivePoolUpsamples,
    /// Softmax may only be the last layer.
    SoftmaxNotLast,
    /// An encoded layer kind this version does not know.
    UnknownLayerKind,
    /// An encoded field that must be zero is not (room for future versions).
    NonZeroReserved,
}

/// An architecture error: which layer, and what is wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ArchError {
    /// Index of the offending layer in the descriptor (0 for whole-net problems).
    pub layer: usize,
    /// The problem.
    pub problem: ArchProblem,
}

/// Every error the core can return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The blob ends before a structure it announces.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed to read it.
        needed: usize,
        /// Bytes the blob has.
        available: usize,
    },
    /// The blob does not start with the format's magic bytes.
    BadMagic,
    /// A format version this build cannot read (newer, or unknown).
    UnsupportedVersion {
        /// The version in the blob.
        found: u16,
        /// The newest version this build reads.
        newest_supported: u16,
    },
    /// A header or section field holds an impossible value.
    BadField {
        /// The field.
        field: &'static str,
        /// Its value.
        found: u32,
    },
    /// The length recorded in the header differs from the slice's length.
    LengthMismatch {
        /// Length the header records.
        header: usize,
        /// Length of the slice handed to the parser.
        actual: usize,
    },
    /// The CRC-32 of the payload differs from the stored one: the blob is corrupt.
    Checksum {
        /// Stored CRC-32.
        stored: u32,
        /// CRC-32 computed over the payload.
        computed: u32,
    },
    /// A buffer or tensor is not aligned as the format or the kernels require.
    Misaligned {
        /// What is misaligned.
        what: &'static str,
        /// Its offset or address.
        offset: usize,
        /// The alignment required.
        align: usize,
    },
    /// A required section is missing.
    MissingSection {
        /// Its tag.
        tag: [u8; 4],
    },
    /// A section appears twice, or has an unknown tag.
    UnexpectedSection {
        /// Its tag.
        tag: [u8; 4],
    },
    /// A section or tensor lies (partly) outside the blob.
    OutOfBounds {
        /// What lies outside.
        what: &'static str,
        /// Its start offset.
        offset: usize,
        /// Its length in bytes.
        len: usize,
        /// The blob length.
        blob_len: usize,
    },
    /// A text field is not valid UTF-8.
    BadUtf8 {
        /// The field.
        what: &'static str,
    },
    /// The architecture descriptor is invalid.
    Arch(ArchError),
    /// A kernel was called with a layer geometry its layer's rules refuse (the kernel does
    /// not know the layer's index; [`Error::Arch`] names it when a whole net is checked).
    Geometry(ArchProblem),
    /// A tensor the architecture needs is absent.
    MissingTensor {
        /// Layer index (`usize::MAX` for model-level tensors).
        layer: usize,
        /// Which tensor.
        role: TensorRole,
    },
    /// A tensor is present twice, or belongs to a layer that has no parameters.
    UnexpectedTensor {
        /// Layer index (`usize::MAX` for model-level tensors).
        layer: usize,
        /// Raw role code from the blob.
        role: u32,
    },
    /// A tensor's shape differs from what the architecture needs.
    TensorShape {
        /// Layer index (`usize::MAX` for model-level tensors).
        layer: usize,
        /// Which tensor.
        role: TensorRole,
        /// Expected dims (unused trailing dims are 0).
        expected: [u32; 4],
        /// Found dims.
        found: [u32; 4],
    },
    /// A tensor has a data type this path cannot use.
    TensorDtype {
        /// Layer index (`usize::MAX` for model-level tensors).
        layer: usize,
        /// Which tensor.
        role: TensorRole,
        /// Raw dtype code found.
        found: u32,
    },
    /// A caller-provided buffer is too small; `needed` says how large it must be.
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// Length needed (bytes for the arena, elements otherwise).
        needed: usize,
        /// Length given.
        found: usize,
    },
    /// A caller-provided slice has the wrong length.
    WrongLength {
        /// Which slice.
        what: &'static str,
        /// Length expected (elements).
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// The labels do not match the number of classes.
    LabelCount {
        /// Number of classes of the network.
        classes: usize,
        /// Number of labels in the blob.
        labels: usize,
    },
    /// Zero-copy views need a little-endian target.
    BigEndianTarget,
    /// The model is f32 and int8 was asked for, or the reverse.
    WrongPrecision {
        /// What the model holds.
        model: Precision,
        /// What the call needs.
        called: Precision,
    },
    /// A quantization parameter breaks the int8 contract (`docs/int8-spec.md`).
    BadQuantization {
        /// Layer index (`usize::MAX` for the input).
        layer: usize,
        /// What is wrong.
        what: &'static str,
    },
}

/// The arithmetic a model's weights are stored for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Precision {
    /// IEEE-754 single precision.
    F32,
    /// int8 fixed point (`docs/int8-spec.md`).
    Int8,
}

impl From<ArchError> for Error {
    fn from(e: ArchError) -> Self {
        Error::Arch(e)
    }
}

impl fmt::Display for ArchProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ArchProblem::NoLayers => "the network has no layers",
            ArchProblem::TooManyLayers => "too many layers",
            ArchProblem::ZeroDimension => "a dimension is zero",
            ArchProblem::TooLarge => "a dimension or tensor is too large",
            ArchProblem::WindowLargerThanInput => "the window is larger than the (padded) input",
            ArchProblem::PaddingNotSmallerThanKernel => "padding must be smaller than the kernel",
            ArchProblem::GroupsDoNotDivideChannels => {
                "groups must divide the input and output channels"
            }
            ArchProblem::BadLrnSize => "LRN size must be odd and at most 15",
            ArchProblem::BadConstant => "a constant is not finite or out of range",
            ArchProblem::AdaptivePoolUpsamples => "adaptive pooling cannot enlarge its input",
            ArchProblem::SoftmaxNotLast => "softmax may only be the last layer",
            ArchProblem::UnknownLayerKind => "unknown layer kind",
            ArchProblem::NonZeroReserved => "a reserved field is not zero",
        };
        f.write_str(s)
    }
}

/// Writes `layer 3` or `the model` for model-level tensors.
struct LayerRef(usize);
impl fmt::Display for LayerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == usize::MAX {
            f.write_str("the model")
        } else {
            write!(f, "layer {}", self.0)
        }
    }
}

/// Writes a tag such as `ARCH`, escaping non-printable bytes.
struct Tag([u8; 4]);
impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Writes dims as `[96, 3, 11, 11]`, dropping unused trailing zeros.
struct Dims([u32; 4]);
impl fmt::Display for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rank = self.0.iter().rposition(|&d| d != 0).map_or(0, |i| i + 1);
        f.write_str("[")?;
        for (i, d) in self.0.iter().take(rank).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { what, needed, available } => write!(
                f,
                "blob truncated: {what} needs {needed} bytes, only {available} available"
            ),
            Error::BadMagic => f.write_str("not an AlexNet model blob (bad magic bytes)"),
            Error::UnsupportedVersion { found, newest_supported } => write!(
                f,
                "blob format version {found} is not supported (this build reads up to {newest_supported}); \
                 upgrade alexnet-core or re-export the model"
            ),
            Error::BadField { field, found } => write!(f, "invalid {field}: {found}"),
            Error::LengthMismatch { header, actual } => write!(
                f,
                "blob length mismatch: header says {header} bytes, got {actual}"
            ),
            Error::Checksum { stored, computed } => write!(
                f,
                "blob corrupt: CRC-32 is {computed:#010x}, header says {stored:#010x}"
            ),
            Error::Misaligned { what, offset, align } => {
                write!(f, "{what} at {offset:#x} is not aligned to {align} bytes")
            }
            Error::MissingSection { tag } => write!(f, "blob lacks the {} section", Tag(tag)),
            Error::UnexpectedSection { tag } => {
                write!(f, "unexpected or repeated section {}", Tag(tag))
            }
            Error::OutOfBounds { what, offset, len, blob_len } => write!(
                f,
                "{what} (offset {offset}, {len} bytes) lies outside the {blob_len}-byte blob"
            ),
            Error::BadUtf8 { what } => write!(f, "{what} is not valid UTF-8"),
            Error::Arch(e) => write!(f, "invalid architecture at layer {}: {}", e.layer, e.problem),
            Error::Geometry(problem) => write!(f, "invalid layer geometry: {problem}"),
            Error::MissingTensor { layer, role } => {
                write!(f, "{} lacks its {} tensor", LayerRef(layer), role.name())
            }
            Error::UnexpectedTensor { layer, role } => write!(
                f,
                "unexpected tensor (role code {role}) for {}: repeated, or the layer has no parameters",
                LayerRef(layer)
            ),
            Error::TensorShape { layer, role, expected, found } => write!(
                f,
                "{} {} tensor has shape {}, expected {}",
                LayerRef(layer),
                role.name(),
                Dims(found),
                Dims(expected)
            ),
            Error::TensorDtype { layer, role, found } => write!(
                f,
                "{} {} tensor has data type code {found}, which this model's precision does not allow there",
                LayerRef(layer),
                role.name()
            ),
            Error::BufferTooSmall { what, needed, found } => {
                write!(f, "{what} too small: need {needed}, got {found}")
            }
            Error::WrongLength { what, expected, found } => {
                write!(f, "{what} has length {found}, expected {expected}")
            }
            Error::LabelCount { classes, labels } => write!(
                f,
                "blob has {labels} class labels for a network with {classes} classes"
            ),
            Error::BigEndianTarget => {
                f.write_str("model blobs are little-endian; this target is big-endian")
            }
            Error::WrongPrecision { model, called } => write!(
                f,
                "this is a{} model; use {}",
                match model {
                    Precision::F32 => "n f32",
                    Precision::Int8 => "n int8",
                },
                match called {
                    Precision::F32 => "forward_int8 for int8 models",
                    Precision::Int8 => "forward for f32 models",
                }
            ),
            Error::BadQuantization { layer, what } => {
                write!(f, "invalid quantization of {}: {what}", LayerRef(layer))
            }
        }
    }
}

impl core::error::Error for Error {}
