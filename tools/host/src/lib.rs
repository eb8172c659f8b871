//! Host-side companion of `alexnet-core`: everything that needs `std`.
//!
//! * [`spec`]: an owned model description (architecture, weights, preprocessing, labels) and
//!   the blob writer that serializes it in the core's format.
//! * [`profile`]: per built-in net, as data: tensor names, preprocessing, labels, initializer.
//! * [`init`]: random initializations (the paper's, He et al.'s).
//! * [`weights`]: f32 weights from any file the tools read (blob, safetensors, `.pth`),
//!   the format told by the file's content.
//! * [`blob_file`]: reading a blob from disk into aligned memory.
//! * [`fpenv`]: the check that the floating-point mode is the one the f32 contract needs.
//! * [`atomic`]: crash-safe file writes (temporary file, sync, rename).
//! * [`image_input`]: decoding, resizing, cropping and normalizing images for a model.
//! * [`dataset`]: calibration and evaluation images from a folder or an IDX file.
//! * [`idx`]: Fashion-MNIST / MNIST IDX files (optionally gzip-compressed).
//! * [`npy`]: writing NumPy `.npy` arrays.
//! * [`safetensors_io`]: f32 weights as safetensors, with torchvision's names.
//! * [`pth`]: PyTorch checkpoints (`torch.save`d state_dicts, zip and legacy formats), read
//!   natively: torchvision's AlexNet weights without Python.
//! * [`quantize`]: post-training int8 quantization, and the f32-versus-int8 comparison.
//! * [`progress`]: the tools' one progress-bar style.
//! * [`firmware`]: the host's half of the firmware check (its image file and log).
//! * [`c_export`]: a model blob as a C header, for firmware written in C.

pub mod atomic;
pub mod blob_file;
pub mod c_export;
pub mod dataset;
pub mod firmware;
pub mod fpenv;
pub mod idx;
pub mod image_input;
pub mod init;
pub mod jpeg;
pub mod npy;
pub mod onnx;
#[cfg(feature = "parallel")]
pub mod parallel;
pub mod profile;
pub mod progress;
pub mod pth;
pub mod quantize;
pub mod resample;
pub mod safetensors_io;
pub mod spec;
pub mod weights;

pub use blob_file::BlobFile;
pub use spec::{
    LayerParams, MeanSpec, ModelSpec, PreprocessSpec, QKernelSpec, QLayerSpec, QuantSpec,
};
