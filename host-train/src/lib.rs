//! `host-train`: AlexNet in libtorch (through `tch`), built from the core's architecture
//! descriptors, so the trainer and the device can never disagree on the net.
//!
//! * [`net`]: the tch network for any `alexnet_core::Arch`, on one device or split into the
//!   paper's towers, with weights to and from the host's `ModelSpec`.
//! * [`lrn`]: Local Response Normalization composed from tensor ops, both conventions.
//! * [`data`]: Fashion-MNIST and ImageNet-style folders, the preprocessing cache,
//!   augmentation (crops, flips, PCA colour noise) and the multi-threaded loader.
//! * [`config`]: the paper's recipe as defaults, TOML and flags over it.
//! * [`train`]: the loop, its schedule and the export; [`sgd`], [`eval`], [`checkpoint`],
//!   [`metrics`] its parts; [`dist`] data parallelism (NCCL on GPUs, TCP on the CPU);
//!   [`device`] device names and libtorch's global switches.
//! * [`verify`]: tch against the core, two towers against one (the tests and
//!   `host-train verify`).

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod dist;
pub mod eval;
pub mod lrn;
pub mod metrics;
pub mod net;
pub mod sgd;
pub mod train;
pub mod verify;

pub use net::Net;
