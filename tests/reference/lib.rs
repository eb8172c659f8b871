//! Independent reference implementations the integration tests check the core against.
//!
//! Two kinds, both plain loops written from the documents, not from the core's code:
//! * [`f64`]: the mathematics in f64, with the textbook error bound of an f32 computation of
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
    use proptest::strategy::Strategy;
    (
        1usize..=3,
        1usize..=3,
        1usize..=3,
        1usize..=5,
        1usize..=4,
        0usize..5,
        0usize..9,
        0usize..9,
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
