//! Status codes: one per `alexnet_core::Error` kind, and the few only C callers can cause.

use alexnet_core::Error;
use core::ffi::c_char;

/// What a call did: `ALEXNET_OK` (0), or the code of why it refused. A plain `int32_t`
/// rather than a C enum, whose size compilers choose differently. Codes are stable; new
/// ones are only ever added.
pub type alexnet_status_t = i32;

/// Success.
pub const ALEXNET_OK: alexnet_status_t = 0;
/// A pointer argument is NULL.
pub const ALEXNET_ERR_NULL_POINTER: alexnet_status_t = 1;
/// The handle was not filled by a successful `alexnet_model_parse`.
pub const ALEXNET_ERR_NOT_A_MODEL: alexnet_status_t = 2;
/// An output array overlaps an input array or the arena.
pub const ALEXNET_ERR_OVERLAPPING_BUFFERS: alexnet_status_t = 3;
/// The model has no label for this class.
pub const ALEXNET_ERR_NO_LABEL: alexnet_status_t = 4;
/// The blob ends before a structure it announces (truncated).
pub const ALEXNET_ERR_TRUNCATED: alexnet_status_t = 10;
/// Not a model blob (bad magic bytes).
pub const ALEXNET_ERR_BAD_MAGIC: alexnet_status_t = 11;
/// A blob format version this build cannot read.
pub const ALEXNET_ERR_UNSUPPORTED_VERSION: alexnet_status_t = 12;
/// A header or section field holds an impossible value.
pub const ALEXNET_ERR_BAD_FIELD: alexnet_status_t = 13;
/// The length in the blob's header differs from the length passed.
pub const ALEXNET_ERR_LENGTH_MISMATCH: alexnet_status_t = 14;
/// The blob's CRC-32 does not match: it is corrupt.
pub const ALEXNET_ERR_CHECKSUM: alexnet_status_t = 15;
/// A buffer is not aligned as required (the blob: 4 bytes, 64 recommended; arrays: their
/// element type's alignment).
pub const ALEXNET_ERR_MISALIGNED: alexnet_status_t = 16;
/// A required blob section is missing.
pub const ALEXNET_ERR_MISSING_SECTION: alexnet_status_t = 17;
/// A blob section is repeated or unknown.
pub const ALEXNET_ERR_UNEXPECTED_SECTION: alexnet_status_t = 18;
/// A section or tensor lies outside the blob.
pub const ALEXNET_ERR_OUT_OF_BOUNDS: alexnet_status_t = 19;
/// A text field of the blob is not UTF-8.
pub const ALEXNET_ERR_BAD_UTF8: alexnet_status_t = 20;
/// The blob's architecture descriptor is invalid.
pub const ALEXNET_ERR_ARCH: alexnet_status_t = 21;
/// A layer geometry the kernels refuse.
pub const ALEXNET_ERR_GEOMETRY: alexnet_status_t = 22;
/// A tensor the architecture needs is missing from the blob.
pub const ALEXNET_ERR_MISSING_TENSOR: alexnet_status_t = 23;
/// A tensor is repeated, or belongs to a layer without parameters.
pub const ALEXNET_ERR_UNEXPECTED_TENSOR: alexnet_status_t = 24;
/// A tensor's shape differs from the architecture's.
pub const ALEXNET_ERR_TENSOR_SHAPE: alexnet_status_t = 25;
/// A tensor's data type does not fit the model's precision.
pub const ALEXNET_ERR_TENSOR_DTYPE: alexnet_status_t = 26;
/// A caller's buffer is too small (the arena: see `alexnet_model_arena_bytes`).
pub const ALEXNET_ERR_BUFFER_TOO_SMALL: alexnet_status_t = 27;
/// An array has the wrong number of elements.
pub const ALEXNET_ERR_WRONG_LENGTH: alexnet_status_t = 28;
/// The blob's labels do not match the number of classes.
pub const ALEXNET_ERR_LABEL_COUNT: alexnet_status_t = 29;
/// Model blobs are little-endian; this target is big-endian.
pub const ALEXNET_ERR_BIG_ENDIAN_TARGET: alexnet_status_t = 30;
/// The f32 forward pass on an int8 model, or the reverse.
pub const ALEXNET_ERR_WRONG_PRECISION: alexnet_status_t = 31;
/// A quantization parameter breaks the int8 contract.
pub const ALEXNET_ERR_BAD_QUANTIZATION: alexnet_status_t = 32;

/// The code of a core error. Exhaustive: a new error kind in the core does not compile until
/// it has its code here.
pub(crate) fn code(e: Error) -> alexnet_status_t {
    match e {
        Error::Truncated { .. } => ALEXNET_ERR_TRUNCATED,
        Error::BadMagic => ALEXNET_ERR_BAD_MAGIC,
        Error::UnsupportedVersion { .. } => ALEXNET_ERR_UNSUPPORTED_VERSION,
        Error::BadField { .. } => ALEXNET_ERR_BAD_FIELD,
        Error::LengthMismatch { .. } => ALEXNET_ERR_LENGTH_MISMATCH,
        Error::Checksum { .. } => ALEXNET_ERR_CHECKSUM,
        Error::Misaligned { .. } => ALEXNET_ERR_MISALIGNED,
        Error::MissingSection { .. } => ALEXNET_ERR_MISSING_SECTION,
        Error::UnexpectedSection { .. } => ALEXNET_ERR_UNEXPECTED_SECTION,
        Error::OutOfBounds { .. } => ALEXNET_ERR_OUT_OF_BOUNDS,
        Error::BadUtf8 { .. } => ALEXNET_ERR_BAD_UTF8,
        Error::Arch(_) => ALEXNET_ERR_ARCH,
        Error::Geometry(_) => ALEXNET_ERR_GEOMETRY,
        Error::MissingTensor { .. } => ALEXNET_ERR_MISSING_TENSOR,
        Error::UnexpectedTensor { .. } => ALEXNET_ERR_UNEXPECTED_TENSOR,
        Error::TensorShape { .. } => ALEXNET_ERR_TENSOR_SHAPE,
        Error::TensorDtype { .. } => ALEXNET_ERR_TENSOR_DTYPE,
        Error::BufferTooSmall { .. } => ALEXNET_ERR_BUFFER_TOO_SMALL,
        Error::WrongLength { .. } => ALEXNET_ERR_WRONG_LENGTH,
        Error::LabelCount { .. } => ALEXNET_ERR_LABEL_COUNT,
        Error::BigEndianTarget => ALEXNET_ERR_BIG_ENDIAN_TARGET,
        Error::WrongPrecision { .. } => ALEXNET_ERR_WRONG_PRECISION,
        Error::BadQuantization { .. } => ALEXNET_ERR_BAD_QUANTIZATION,
    }
}

/// The status of a call's result.
pub(crate) fn of(r: Result<(), alexnet_status_t>) -> alexnet_status_t {
    r.err().unwrap_or(ALEXNET_OK)
}

/// A core error as a status, for `?` in the functions' bodies.
pub(crate) trait OrStatus<T> {
    /// `Err(code(e))` for `Err(e)`.
    fn or_status(self) -> Result<T, alexnet_status_t>;
}

impl<T> OrStatus<T> for Result<T, Error> {
    fn or_status(self) -> Result<T, alexnet_status_t> {
        self.map_err(code)
    }
}

/// A sentence saying what a status code means, as a NUL-terminated string in static memory
/// (never NULL; codes this version does not know get "unknown status code").
#[no_mangle]
pub extern "C" fn alexnet_status_message(status: alexnet_status_t) -> *const c_char {
    let text: &'static core::ffi::CStr = match status {
        0 => c"success",
        1 => c"a pointer argument is NULL",
        2 => c"the handle does not hold a model: call alexnet_model_parse first, and check its status",
        3 => c"an output array overlaps an input array or the arena",
        4 => c"the model has no label for this class",
        10 => c"the blob is truncated: it ends before a structure it announces",
        11 => c"not an AlexNet model blob (bad magic bytes)",
        12 => c"the blob's format version is not supported by this build: upgrade the library or re-export the model",
        13 => c"a header or section field of the blob holds an impossible value",
        14 => c"the length in the blob's header differs from the length passed",
        15 => c"the blob is corrupt: its CRC-32 does not match",
        16 => c"a buffer is misaligned: the blob needs 4 bytes (64 recommended, see alexnet export-c), arrays their element's alignment",
        17 => c"the blob lacks a required section",
        18 => c"the blob has a repeated or unknown section",
        19 => c"a section or tensor lies outside the blob",
        20 => c"a text field of the blob is not valid UTF-8",
        21 => c"the blob's architecture descriptor is invalid",
        22 => c"a layer geometry the kernels refuse",
        23 => c"a tensor the architecture needs is missing from the blob",
        24 => c"the blob has a repeated tensor, or one for a layer without parameters",
        25 => c"a tensor's shape differs from what the architecture needs",
        26 => c"a tensor's data type does not fit the model's precision",
        27 => c"a buffer is too small (an arena needs alexnet_model_arena_bytes bytes, a label buffer the label and its NUL)",
        28 => c"an array has the wrong number of elements (see alexnet_model_info)",
        29 => c"the blob's labels do not match the number of classes",
        30 => c"model blobs are little-endian; this target is big-endian",
        31 => c"wrong precision: alexnet_forward_f32 runs f32 models, alexnet_forward_int8 int8 models",
        32 => c"a quantization parameter breaks the int8 contract",
        _ => c"unknown status code",
    };
    text.as_ptr()
}
