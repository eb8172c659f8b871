//! Definitions reorganized over blocks of pixels or rows: each output's arithmetic is the
//! contract's, only many outputs are computed side by side, with contiguous loads that SIMD
//! units and the Cortex-M FPU's `VLDM` want, and without the definitions' per-value index
//! arithmetic. Every kernel set uses them: the x86-64 set compiles the f32 LRN for AVX2 with
//! its own innermost step, the Cortex-M sets put their assembly there, and all run the
//! integer LRN and the int8 max pool as they are (plain integer code). The arithmetic is
//! written once, beside the sets that instantiate it.
//!
//! | kernel | used by |
//! |---|---|
//! | [`lrn_f32`] ([`f32_lrn`]) | `X86Avx2` (AVX2 square roots), `CortexM`/`CortexMDsp` (`VSQRT.F32`) |
//! | [`lrn_int8`] ([`int8_lrn`]) | `X86Avx2`, `CortexM`, `CortexMDsp` |
//! | [`max_pool_int8`] ([`int8_pool`]) | `X86Avx2`, `CortexM`, `CortexMDsp` |

pub mod f32_lrn;
pub mod int8_lrn;
pub mod int8_pool;

pub use f32_lrn::{divide_by_three_quarter_power, lrn_f32, LRN_BLOCK};
pub use int8_lrn::{lrn_int8, lrn_int8_with, rounded_channel, RoundedChannel};
pub use int8_pool::{max_pool_int8, max_pool_int8_with, MAX_POOL_ROW};
