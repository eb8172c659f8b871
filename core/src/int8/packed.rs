//! The prepacked layout of int8 convolution weights for the Cortex-M DSP kernel
//! (`docs/model-format.md`, role 7): the host widens the weights to 16 bits once, so the
//! device's inner loop spends no instructions unpacking them.
//!
//! A convolution's output channels are taken in pairs within each group (a lone last channel
//! is paired with a row of zeros). A pair's weights are the taps in `(ky, kx, ic)` order, the
//! order in which a channels-last copy of the input holds a patch contiguously, padded with
//! zeros to a multiple of [`TAP_MULTIPLE`], and interleaved two taps at a time:
//! `w[o0][u], w[o0][u + 1], w[o1][u], w[o1][u + 1]` for `u = 0, 2, 4, ...`. One 64-bit load
//! then gives the next two taps of both channels, as two `SMLAD` operands.

use crate::arch::{ConvSpec, Shape};

/// Taps of a channel pair are padded to a multiple of this: the kernel's loop consumes 16 taps
/// (eight `SMLAD` pair-steps) per turn.
pub const TAP_MULTIPLE: usize = 16;

/// Geometry of the packed layout of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedGeometry {
    /// Input channels per group.
    pub cin_group: usize,
    /// Output channels per group.
    pub cout_group: usize,
    /// Groups.
    pub groups: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Taps per output channel (`cin_group * kernel^2`).
    pub taps: usize,
    /// `taps` rounded up to [`TAP_MULTIPLE`].
    pub padded_taps: usize,
}

impl PackedGeometry {
    /// The layout of a convolution on an input of `input` shape; `None` if the shapes do not
    /// divide (the architecture check refuses those first).
    pub const fn new(spec: &ConvSpec, input: Shape) -> Option<Self> {
        let groups = spec.groups as usize;
        let kernel = spec.kernel as usize;
        if groups == 0
            || !input.c.is_multiple_of(groups)
            || !(spec.out_channels as usize).is_multiple_of(groups)
        {
            return None;
        }
        let cin_group = input.c / groups;
        let taps = cin_group * kernel * kernel;
        let padded_taps = taps.div_ceil(TAP_MULTIPLE) * TAP_MULTIPLE;
        Some(PackedGeometry {
            cin_group,
            cout_group: spec.out_channels as usize / groups,
            groups,
            kernel,
            taps,
            padded_taps,
        })
    }

    /// Channel pairs per group.
    pub const fn pairs_per_group(&self) -> usize {
        self.cout_group.div_ceil(2)
    }

    /// The tensor's dims: channel pairs, tap pairs, channel of the pair, tap of the pair.
    pub const fn dims(&self) -> [u32; 4] {
        [
            (self.groups * self.pairs_per_group()) as u32,
            (self.padded_taps / 2) as u32,
            2,
            2,
        ]
    }

    /// Elements (i16) of the packed tensor.
    pub const fn len(&self) -> usize {
        self.groups * self.pairs_per_group() * self.padded_taps * 2
    }

    /// Whether the tensor is empty (never, for a valid convolution).
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index into PyTorch-layout weights `[out, cin_group, k, k]` of packed element `index`,
    /// or `None` where the layout holds a padding zero.
    pub fn source(&self, index: usize) -> Option<usize> {
        let per_pair = self.padded_taps * 2;
        if per_pair == 0 || self.cin_group == 0 || self.kernel == 0 {
            return None;
        }
        let pairs = self.pairs_per_group().max(1);
        let per_pair = per_pair.max(1);
        let (block, within) = (index / per_pair, index % per_pair);
        let (group, pair) = (block / pairs, block % pairs);
        let (step, lane) = (within / 4, within % 4);
        let (channel, tap) = (2 * pair + lane / 2, 2 * step + lane % 2);
        if group >= self.groups || channel >= self.cout_group || tap >= self.taps {
            return None;
        }
        // Nonzero (checked above); `max(1)` lets the optimizer see it (no panic path).
        let (kernel, cin_group) = (self.kernel.max(1), self.cin_group.max(1));
        let per_row = (kernel * cin_group).max(1);
        let (ky, kx, ic) = (tap / per_row, (tap / cin_group) % kernel, tap % cin_group);
        let o = group * self.cout_group + channel;
        Some(((o * self.cin_group + ic) * self.kernel + ky) * self.kernel + kx)
    }

    /// The packed elements of `weight` (PyTorch layout), in order; zeros where the layout pads
    /// (and where `weight` is too short, which the callers check first).
    pub fn values<'a>(&self, weight: &'a [i8]) -> impl Iterator<Item = i16> + 'a {
        let geometry = *self;
        (0..self.len()).map(move |i| match geometry.source(i) {
            Some(at) => weight.get(at).map_or(0, |&w| w as i16),
            None => 0,
        })
    }
}

/// Largest channels-last, zero-padded copy of one group's input (16-bit values) the packed
/// DSP kernel (`kernels::cortex_m`) keeps on the stack; larger inputs build their patches
/// straight from the input instead (a little slower per MAC, no larger stack).
pub const MAX_PADDED_INPUT: usize = 8192;
/// Largest padded patch (taps per output channel) of the packed kernel: one pixel pair's
/// patches fill its column buffer (18 KiB of stack).
pub const MAX_PACKED_TAPS: usize = 4608;

/// Whether the packed kernel handles this convolution (otherwise the unpacked kernel runs,
/// and a blob need not carry its packed weights).
pub const fn packed_fits(spec: &ConvSpec, in_shape: Shape) -> bool {
    let Some(geometry) = PackedGeometry::new(spec, in_shape) else {
        return false;
    };
    geometry.padded_taps <= MAX_PACKED_TAPS && geometry.taps > 0
}

/// Whether the packed kernel's channels-last copy of a group's padded input fits its stack
/// buffer (the faster way to build patches).
pub const fn padded_input_fits(spec: &ConvSpec, in_shape: Shape) -> bool {
    let Some(geometry) = PackedGeometry::new(spec, in_shape) else {
        return false;
    };
    let p = spec.padding as usize;
    geometry.cin_group * (in_shape.h + 2 * p) * (in_shape.w + 2 * p) <= MAX_PADDED_INPUT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_channels_and_reorders_taps_channels_last() {
        // 3 input channels, 2x2 kernel, 3 output channels (a lone last one), one group.
        let spec = ConvSpec {
            out_channels: 3,
            kernel: 2,
            stride: 1,
            padding: 0,
            groups: 1,
        };
        let g = PackedGeometry::new(&spec, Shape::new(3, 4, 4)).unwrap();
        assert_eq!((g.taps, g.padded_taps, g.pairs_per_group()), (12, 16, 2));
        assert_eq!(g.dims(), [2, 8, 2, 2]);
        assert_eq!(g.len(), 64);
        // Weight value = its PyTorch index, so the packed values show where each came from.
        let weight: [i8; 36] = core::array::from_fn(|i| i as i8);
        let mut packed = [0i16; 64];
        for (p, v) in packed.iter_mut().zip(g.values(&weight)) {
            *p = v;
        }
        // Packed tap u = (ky * 2 + kx) * 3 + ic: u0 = (0,0,0) -> 0, u1 = (0,0,1) -> 4,
        // u2 = (0,0,2) -> 8, u3 = (0,1,0) -> 1. Channel 1 adds 12.
        assert_eq!(packed[..8], [0, 4, 12, 16, 8, 1, 20, 13]);
        // Taps 12..16 are padding; the second pair's second channel is padding.
        assert_eq!(packed[24..32], [0; 8]);
        assert_eq!(packed[32..36], [24, 28, 0, 0]);
        assert!(packed[32..].chunks(4).all(|q| q[2] == 0 && q[3] == 0));
    }

    #[test]
    fn groups_pack_separately() {
        let spec = ConvSpec {
            out_channels: 4,
            kernel: 1,
            stride: 1,
            padding: 0,
            groups: 2,
        };
        let g = PackedGeometry::new(&spec, Shape::new(2, 1, 1)).unwrap();
        assert_eq!((g.cin_group, g.taps, g.len()), (1, 1, 2 * 16 * 2));
        let weight = [1i8, 2, 3, 4];
        let packed: [i16; 64] = {
            let mut p = [0i16; 64];
            p.iter_mut()
                .zip(g.values(&weight))
                .for_each(|(p, v)| *p = v);
            p
        };
        assert_eq!(packed[..4], [1, 0, 2, 0]);
        assert_eq!(packed[32..36], [3, 0, 4, 0]);
    }
}
