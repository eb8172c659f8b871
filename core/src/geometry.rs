//! Checked layer geometry: a convolution's or a pooling window's shapes, validated once by
//! the layer's rules ([`Layer::output_shape`]) and then shared by every kernel (reference,
//! x86-64, Cortex-M) and by the host's parallel split, so none of them works the geometry
//! out again. Sizes that cannot be zero are [`NonZeroUsize`]: dividing by them, or chunking
//! by them, has no panic path.

use crate::arch::{ConvSpec, Layer, PoolSpec, Shape};
use crate::error::{ArchProblem, Error};
use crate::int8::QKernel;
use core::num::NonZeroUsize;

/// `n` as a [`NonZeroUsize`], or the layer problem a zero size is.
fn non_zero(n: usize) -> Result<NonZeroUsize, Error> {
    NonZeroUsize::new(n).ok_or(Error::Geometry(ArchProblem::ZeroDimension))
}

/// `h * w` of a validated shape whose width is `w` (nonzero; so is its height).
const fn plane(shape: Shape, w: NonZeroUsize) -> NonZeroUsize {
    match NonZeroUsize::new(shape.h * shape.w) {
        Some(n) => n,
        None => w,
    }
}

/// The output shape of `layer` on `input`, as a kernel-level error.
pub(crate) fn output_shape(layer: &Layer, input: Shape) -> Result<Shape, Error> {
    layer.output_shape(input).map_err(Error::Geometry)
}

/// A layer's input and output shapes, validated, with their (nonzero) widths and planes:
/// what every geometry below has ([`ConvGeometry`], [`PoolGeometry`] and
/// [`AdaptivePoolGeometry`] dereference to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Planes {
    input: Shape,
    output: Shape,
    in_w: NonZeroUsize,
    out_w: NonZeroUsize,
}

impl Planes {
    fn new(input: Shape, output: Shape) -> Result<Self, Error> {
        Ok(Planes {
            input,
            output,
            in_w: non_zero(input.w)?,
            out_w: non_zero(output.w)?,
        })
    }

    /// Input shape `[C, H, W]`.
    pub const fn input(&self) -> Shape {
        self.input
    }
    /// Output shape `[C', H', W']`.
    pub const fn output(&self) -> Shape {
        self.output
    }
    /// Input width.
    pub const fn in_w(&self) -> NonZeroUsize {
        self.in_w
    }
    /// Output width.
    pub const fn out_w(&self) -> NonZeroUsize {
        self.out_w
    }
    /// Input plane `H * W`.
    pub const fn in_plane(&self) -> NonZeroUsize {
        plane(self.input, self.in_w)
    }
    /// Output plane `H' * W'`.
    pub const fn out_plane(&self) -> NonZeroUsize {
        plane(self.output, self.out_w)
    }

    /// Checks the input and output slices (named `names`) of a layer with no other tensor.
    fn check(&self, names: [&'static str; 2], input: usize, output: usize) -> Result<(), Error> {
        expect_len(names[0], self.input.len(), input)?;
        expect_len(names[1], self.output.len(), output)
    }
}

macro_rules! deref_to_planes {
    ($($geometry:ty),*) => {$(
        impl core::ops::Deref for $geometry {
            type Target = Planes;
            fn deref(&self) -> &Planes {
                &self.planes
            }
        }
    )*};
}
deref_to_planes!(ConvGeometry, PoolGeometry, AdaptivePoolGeometry);

/// A convolution's geometry on one input shape, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConvGeometry {
    spec: ConvSpec,
    planes: Planes,
    kernel: NonZeroUsize,
    stride: NonZeroUsize,
    padding: usize,
    groups: NonZeroUsize,
    in_per_group: NonZeroUsize,
    out_per_group: NonZeroUsize,
}

impl ConvGeometry {
    /// Validates `spec` on `input` (the same rules as the architecture check).
    pub fn new(spec: &ConvSpec, input: Shape) -> Result<Self, Error> {
        let output = output_shape(&Layer::Conv(*spec), input)?;
        let groups = non_zero(spec.groups as usize)?;
        Ok(ConvGeometry {
            spec: *spec,
            planes: Planes::new(input, output)?,
            kernel: non_zero(spec.kernel as usize)?,
            stride: non_zero(spec.stride as usize)?,
            padding: spec.padding as usize,
            groups,
            in_per_group: non_zero(input.c / groups)?,
            out_per_group: non_zero(output.c / groups)?,
        })
    }

    /// The layer's descriptor.
    pub const fn spec(&self) -> &ConvSpec {
        &self.spec
    }
    /// Kernel height and width.
    pub const fn kernel(&self) -> NonZeroUsize {
        self.kernel
    }
    /// Stride in both directions.
    pub const fn stride(&self) -> NonZeroUsize {
        self.stride
    }
    /// Zero padding on each side (smaller than the kernel).
    pub const fn padding(&self) -> usize {
        self.padding
    }
    /// Channel groups.
    pub const fn groups(&self) -> NonZeroUsize {
        self.groups
    }
    /// Input channels per group.
    pub const fn in_per_group(&self) -> NonZeroUsize {
        self.in_per_group
    }
    /// Output channels per group.
    pub const fn out_per_group(&self) -> NonZeroUsize {
        self.out_per_group
    }
    /// Kernel area `k * k`.
    pub const fn area(&self) -> NonZeroUsize {
        match NonZeroUsize::new(self.kernel.get() * self.kernel.get()) {
            Some(n) => n,
            None => self.kernel,
        }
    }
    /// Taps per output (products summed): `in_per_group * k * k`.
    pub const fn taps(&self) -> NonZeroUsize {
        match NonZeroUsize::new(self.in_per_group.get() * self.area().get()) {
            Some(n) => n,
            None => self.kernel,
        }
    }
    /// Weight elements: `out_channels * taps`.
    pub const fn weight_len(&self) -> usize {
        self.planes.output.c * self.taps().get()
    }
    /// The group output channel `o` belongs to.
    pub fn group_of(&self, o: usize) -> usize {
        o / self.out_per_group
    }

    /// The input row that kernel row `ky` of output row `oy` reads, `None` in the padding.
    pub fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        self.dims().input_row(oy, ky)
    }

    /// The output columns `lo..hi` whose kernel column `kx` falls inside the input row
    /// (`x * stride + kx - padding` in `[0, W)`); the rest read padding.
    pub fn valid_columns(&self, kx: usize) -> (usize, usize) {
        self.dims().valid_columns(kx)
    }

    /// The sizes as plain numbers, for a kernel's hot loops.
    pub fn dims(&self) -> ConvDims {
        ConvDims {
            groups: self.groups.get(),
            cin_g: self.in_per_group.get(),
            cout_g: self.out_per_group.get(),
            k: self.kernel.get(),
            stride: self.stride.get(),
            pad: self.padding,
            in_h: self.planes.input.h,
            in_w: self.planes.in_w.get(),
            in_plane: self.in_plane().get(),
            out_w: self.planes.out_w.get(),
            pixels: self.out_plane().get(),
            taps: self.taps().get(),
        }
    }

    /// The same convolution over `rows` input rows with no padding (the fused chains make
    /// the padding explicit in a band), or `None` if that geometry is invalid.
    pub fn without_padding(&self, band: Shape) -> Result<Self, Error> {
        let spec = ConvSpec {
            padding: 0,
            ..self.spec
        };
        ConvGeometry::new(&spec, band)
    }

    /// Checks the slices of an f32 call against the geometry.
    pub fn check_f32(
        &self,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &[f32],
    ) -> Result<(), Error> {
        self.check(
            input.len(),
            weight.len(),
            &[("conv bias", bias.len())],
            output.len(),
        )
    }

    /// Checks the slices of an int8 call against the geometry.
    pub fn check_int8(
        &self,
        input: &[i8],
        kernel: &QKernel<'_>,
        output: &[i8],
    ) -> Result<(), Error> {
        self.check(
            input.len(),
            kernel.weight.len(),
            &[
                ("conv bias", kernel.bias.len()),
                ("conv multiplier", kernel.multiplier.len()),
                ("conv shift", kernel.shift.len()),
            ],
            output.len(),
        )
    }

    /// Input, weight, every per-channel tensor (all of `out_channels`) and output.
    fn check(
        &self,
        input: usize,
        weight: usize,
        per_channel: &[(&'static str, usize)],
        output: usize,
    ) -> Result<(), Error> {
        expect_len("conv input", self.planes.input.len(), input)?;
        expect_len("conv weight", self.weight_len(), weight)?;
        for &(what, len) in per_channel {
            expect_len(what, self.planes.output.c, len)?;
        }
        expect_len("conv output", self.planes.output.len(), output)
    }
}

/// A [`ConvGeometry`]'s sizes as plain numbers, copied out once per call so that a kernel's
/// hot loops keep them in registers (reading them through the geometry in the innermost
/// loop's prologue cost the Cortex-M4 int8 convolution a quarter more instructions). Every
/// size that divides or chunks is at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    /// Channel groups.
    pub groups: usize,
    /// Input channels per group.
    pub cin_g: usize,
    /// Output channels per group.
    pub cout_g: usize,
    /// Kernel height and width.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Padding on each side.
    pub pad: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input plane `H * W`.
    pub in_plane: usize,
    /// Output width.
    pub out_w: usize,
    /// Output pixels per channel.
    pub pixels: usize,
    /// Taps per output: `cin_g * k * k`.
    pub taps: usize,
}

impl ConvDims {
    /// The input row that kernel row `ky` of output row `oy` reads, `None` in the padding.
    #[inline]
    pub fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        // Above the input the row wraps past `in_h`: one comparison tests both ends.
        let iy = (oy * self.stride + ky).wrapping_sub(self.pad);
        (iy < self.in_h).then_some(iy)
    }

    /// The output columns `lo..hi` whose kernel column `kx` falls inside the input row
    /// (`x * stride + kx - pad` in `[0, W)`); the rest read padding.
    #[inline]
    pub fn valid_columns(&self, kx: usize) -> (usize, usize) {
        let (s, p, out_w) = (self.stride.max(1), self.pad, self.out_w);
        let lo = if kx >= p { 0 } else { (p - kx).div_ceil(s) };
        let hi = if self.in_w + p > kx {
            (self.in_w + p - kx - 1) / s + 1
        } else {
            0
        };
        let hi = hi.min(out_w);
        (lo.min(hi), hi)
    }
}

/// A max pooling window's geometry on one input shape, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PoolGeometry {
    planes: Planes,
    window: NonZeroUsize,
    stride: NonZeroUsize,
}

impl PoolGeometry {
    /// Validates `spec` on `input` (no padding, floor mode).
    pub fn new(spec: &PoolSpec, input: Shape) -> Result<Self, Error> {
        let output = output_shape(&Layer::MaxPool(*spec), input)?;
        Ok(PoolGeometry {
            planes: Planes::new(input, output)?,
            window: non_zero(spec.window as usize)?,
            stride: non_zero(spec.stride as usize)?,
        })
    }

    /// Window height and width.
    pub const fn window(&self) -> NonZeroUsize {
        self.window
    }
    /// Stride in both directions.
    pub const fn stride(&self) -> NonZeroUsize {
        self.stride
    }

    /// Checks the slices of one call.
    pub fn check(&self, input: usize, output: usize) -> Result<(), Error> {
        self.planes
            .check(["maxpool input", "maxpool output"], input, output)
    }
}

/// An adaptive average pooling's geometry (PyTorch's `AdaptiveAvgPool2d`), validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdaptivePoolGeometry {
    planes: Planes,
}

impl AdaptivePoolGeometry {
    /// Validates pooling `input` to `out_h x out_w`.
    pub fn new(input: Shape, out_h: u32, out_w: u32) -> Result<Self, Error> {
        let output = output_shape(&Layer::AdaptiveAvgPool { out_h, out_w }, input)?;
        Ok(AdaptivePoolGeometry {
            planes: Planes::new(input, output)?,
        })
    }

    /// The input rows (or columns) `[lo, hi)` of output index `i`: PyTorch's
    /// `[floor(i * n / out), ceil((i + 1) * n / out))`.
    pub const fn window(i: usize, n: usize, out: usize) -> (usize, usize) {
        if out == 0 {
            return (0, 0);
        }
        (i * n / out, ((i + 1) * n).div_ceil(out))
    }

    /// Checks the slices of one call.
    pub fn check(&self, input: usize, output: usize) -> Result<(), Error> {
        self.planes
            .check(["avgpool input", "avgpool output"], input, output)
    }
}

/// Refuses a slice whose length differs from the one the shapes imply.
pub(crate) fn expect_len(what: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::WrongLength {
            what,
            expected,
            found,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_geometry_derives_once() -> Result<(), Error> {
        let spec = ConvSpec {
            out_channels: 4,
            kernel: 3,
            stride: 2,
            padding: 1,
            groups: 2,
        };
        let g = ConvGeometry::new(&spec, Shape::new(6, 7, 5))?;
        assert_eq!(g.output(), Shape::new(4, 4, 3));
        assert_eq!((g.in_per_group().get(), g.out_per_group().get()), (3, 2));
        assert_eq!(g.taps().get(), 27);
        assert_eq!(g.weight_len(), 108);
        assert_eq!(g.input_row(0, 0), None);
        assert_eq!(g.input_row(3, 2), None); // row 7 of 7: past the end
        assert_eq!(g.input_row(2, 1), Some(4));
        // Column 0 of the output at kx = 0 reads x = -1 (padding).
        assert_eq!(g.valid_columns(0), (1, 3));
        assert_eq!(g.valid_columns(1), (0, 3));
        Ok(())
    }

    #[test]
    fn zero_and_mismatched_geometries_are_errors() {
        let spec = ConvSpec {
            out_channels: 4,
            kernel: 3,
            stride: 0,
            padding: 1,
            groups: 1,
        };
        assert_eq!(
            ConvGeometry::new(&spec, Shape::new(1, 5, 5)),
            Err(Error::Geometry(ArchProblem::ZeroDimension))
        );
        let spec = ConvSpec {
            stride: 1,
            groups: 3,
            ..spec
        };
        assert_eq!(
            ConvGeometry::new(&spec, Shape::new(2, 5, 5)),
            Err(Error::Geometry(ArchProblem::GroupsDoNotDivideChannels))
        );
        let pool = PoolSpec {
            window: 6,
            stride: 1,
        };
        assert_eq!(
            PoolGeometry::new(&pool, Shape::new(1, 5, 5)),
            Err(Error::Geometry(ArchProblem::WindowLargerThanInput))
        );
    }
}
