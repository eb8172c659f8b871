//! The int8 definitions: integer-only, as `docs/int8-spec.md` defines them. No floating
//! point is used here, so this path runs on FPU-less cores.

mod conv;
mod linear;
mod lrn;
mod pool;

pub use conv::conv2d;
pub(crate) use linear::check_linear;
pub use linear::linear;
pub(crate) use lrn::check as check_lrn;
pub use lrn::lrn_in_place;
pub use pool::{adaptive_avg_pool, max_pool};

use crate::int8::requant::saturate;

/// `max(q, zp)` in place: ReLU on int8 codes.
pub fn relu_in_place(values: &mut [i8], zero_point: i32) {
    let zp = saturate(zero_point as i64);
    for v in values {
        if *v < zp {
            *v = zp;
        }
    }
}
