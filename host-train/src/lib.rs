//! `host-train`: AlexNet in libtorch (through `tch`), built from the core's architecture
//! descriptors, so the trainer and the device can never disagree on the net.
//!
//! * [`net`]: the tch network for any `alexnet_core::Arch`, with weights to and from the
//!   host's `ModelSpec` (and so to core blobs and safetensors).
//! * [`lrn`]: Local Response Normalization composed from tensor ops, both conventions.

pub mod lrn;
pub mod net;

pub use net::Net;
