//! Independent reference implementations the integration tests check the core against.
//!
//! Two kinds, both plain loops written from the documents, not from the core's code:
//! * [`mod@f64`]: the mathematics in f64, with the textbook error bound of an f32 computation of
//!   the same sum, for accuracy checks.
//! * [`contract`]: the f32 accumulation order of `docs/numerics-f32.md`, for bit-exact checks
//!   of the core (and of any faster kernel later).

pub mod contract;
pub mod f64;
pub mod fuzz;
pub mod int8;

/// Unit roundoff of f32, 2^-24.
pub const U32: f64 = 1.0 / 16_777_216.0;

/// Convolution geometry, independent of the core's types.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub out_c: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
}

impl ConvGeom {
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }
    /// Input value at padded coordinates (y, x) of channel ch, or None in the padding.
    pub fn at(&self, input: &[f32], ch: usize, y: usize, x: usize) -> Option<f32> {
        let (y, x) = (y.checked_sub(self.pad)?, x.checked_sub(self.pad)?);
        (y < self.h && x < self.w).then(|| input[(ch * self.h + y) * self.w + x])
    }
}

/// A valid convolution geometry with groups, stride and padding; inputs may be smaller than
/// the kernel where padding makes up for it.
pub fn conv_geometry() -> impl proptest::strategy::Strategy<Value = ConvGeom> {
    conv_geometry_up_to(3, 5, 9)
}

/// [`conv_geometry`] up to `channels` input and output channels per group, `kernel` x
/// `kernel` kernels and `extra` input rows and columns beyond the kernel (1 to 3 groups,
/// strides 1 to 4).
pub fn conv_geometry_up_to(
    channels: usize,
    kernel: usize,
    extra: usize,
) -> impl proptest::strategy::Strategy<Value = ConvGeom> {
    use proptest::strategy::Strategy;
    (
        1usize..=3,
        1usize..=channels,
        1usize..=channels,
        1usize..=kernel,
        1usize..=4,
        0usize..kernel,
        0usize..extra,
        0usize..extra,
    )
        .prop_map(|(groups, cin_g, cout_g, k, stride, pad, dh, dw)| {
            let pad = pad % k;
            let side = |d: usize| (k + d).saturating_sub(2 * pad).max(1);
            ConvGeom {
                c: groups * cin_g,
                h: side(dh),
                w: side(dw),
                out_c: groups * cout_g,
                k,
                stride,
                pad,
                groups,
            }
        })
}

/// `docs/kernels.md`, included so that its Rust example compiles and runs as a doctest.
#[doc = include_str!("../../docs/kernels.md")]
pub mod kernels_doc {}

/// The workspace's root folder.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the project venv's Python (`.venv`, with torch, torchvision and ONNX Runtime: `cargo
/// xtask setup` makes it) with `args`, and panics, saying `what` failed, unless it succeeds.
pub fn venv_python<I, S>(what: &str, args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let python = workspace_root().join(".venv/bin/python");
    let status = std::process::Command::new(&python)
        .args(args)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (cargo xtask setup makes the venv)",
                python.display()
            )
        });
    assert!(status.success(), "{what} failed");
}
