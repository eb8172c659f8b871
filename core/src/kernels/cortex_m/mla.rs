//! The int8 convolution for Cortex-M cores without the DSP extension (Cortex-M3, and M4, M7
//! or M33 builds without the `dsp` feature): `packed_conv`'s 2x2 blocks on `MLA`, one
//! 32-bit multiply-accumulate per instruction, each operand loaded once per block by `LDRSH`
//! (the host's prepacked weights are already 16-bit: nothing is unpacked on the device).
//! Per pair-step of a block (two taps, eight MACs): eight loads and eight `MLA`s, 2
//! instructions per MAC, against about 19 for the definition's loops on the same core.
//!
//! On Thumb-2 cores (ARMv7-M, ARMv8-M Mainline: the `thumb2` cfg of `build.rs`) the loop is
//! assembly, since the compiler's version spills its accumulators; elsewhere (Cortex-M0/M0+,
//! ARMv8-M Baseline, the host) the same arithmetic in Rust, which the host's kernel suite
//! checks against the definition. Without prepacked weights the definition runs (and says
//! so).

use super::super::reference::int8 as definition;
use super::super::KernelPath;
use super::packed_conv::{self, Block2x2, Slot};
use crate::error::Error;
use crate::geometry::ConvGeometry;
use crate::int8::{QKernel, ZeroPoints};

/// The int8 convolution ([`definition::conv2d`]): with prepacked weights that fit the
/// layout, `packed_conv`'s kernel on `Mla`; otherwise the definition.
pub fn conv2d(
    g: &ConvGeometry,
    input: &[i8],
    kernel: &QKernel<'_>,
    zero_points: ZeroPoints,
    output: &mut [i8],
) -> Result<KernelPath, Error> {
    g.check_int8(input, kernel, output)?;
    if packed_conv::conv2d_packed::<Mla>(g, input, kernel, zero_points, output).is_some() {
        return Ok(KernelPath::CortexM);
    }
    definition::conv2d(g, input, kernel, zero_points, output).map(|()| KernelPath::Reference)
}

/// The 2x2 block on `MLA`.
pub(super) struct Mla;

/// Bytes of one pair-step of the assembly loop (sixteen 32-bit instructions).
#[cfg(thumb2)]
const STEP_BYTES: usize = 64;

impl Block2x2 for Mla {
    /// One assembly loop over the whole tile ([`packed_conv::tile_loop`]): eight pair-steps
    /// (8 `LDRSH` + 8 `MLA` each) per pass, 16 instructions per 8 MACs. A step loads the
    /// taps `u + 1` first and then `u`, so that the last loads of each operand post-increment
    /// its pointer (no separate adds).
    #[cfg(thumb2)]
    #[allow(unsafe_code)]
    #[inline(always)]
    fn tile(w: &[u32], cols: &[u32], steps: usize, bias: [i32; 2], slots: &mut [Slot]) {
        let Some(partial) = packed_conv::prepare_slots(w, cols, steps, bias, slots, STEP_BYTES)
        else {
            return;
        };
        // Halfwords of a step: weights w[o0][u], w[o0][u+1], w[o1][u], w[o1][u+1] at bytes
        // 0, 2, 4, 6; columns likewise for pixels 0 and 1. `LDRSH` has no 16-bit encoding
        // with an immediate, and `MLA` none at all: every instruction is 4 bytes.
        macro_rules! step {
            () => {
                concat!(
                    "ldrsh.w {w0}, [{wp}, #2]\n",
                    "ldrsh.w {w1}, [{wp}, #6]\n",
                    "ldrsh.w {c0}, [{cp}, #2]\n",
                    "ldrsh.w {c1}, [{cp}, #6]\n",
                    "mla {a00}, {w0}, {c0}, {a00}\n",
                    "mla {a01}, {w0}, {c1}, {a01}\n",
                    "mla {a10}, {w1}, {c0}, {a10}\n",
                    "mla {a11}, {w1}, {c1}, {a11}\n",
                    "ldrsh.w {w1}, [{wp}, #4]\n",
                    "ldrsh {w0}, [{wp}], #8\n",
                    "ldrsh.w {c1}, [{cp}, #4]\n",
                    "ldrsh {c0}, [{cp}], #8\n",
                    "mla {a00}, {w0}, {c0}, {a00}\n",
                    "mla {a01}, {w0}, {c1}, {a01}\n",
                    "mla {a10}, {w1}, {c0}, {a10}\n",
                    "mla {a11}, {w1}, {c1}, {a11}\n",
                )
            };
        }
        // SAFETY: `prepare_slots` checked that `w` holds `2 * steps` words and `cols`
        // `2 * steps` words per slot; the slots are `Slot`s (8-aligned, 32 bytes). Each step
        // reads the 8 bytes at `{wp}` and at `{cp}` (halfword-aligned, as `LDRSH` needs) and
        // advances both by 8, and the partial first pass runs exactly `steps % 8` of the
        // identical 64-byte steps.
        unsafe { packed_conv::tile_loop!(slots, cols, step, partial) };
    }

    /// The same multiply-accumulates in Rust.
    #[cfg(not(thumb2))]
    #[inline(always)]
    fn tile(w: &[u32], cols: &[u32], steps: usize, bias: [i32; 2], slots: &mut [Slot]) {
        packed_conv::portable_tile(w, cols, steps, bias, slots);
    }
}
