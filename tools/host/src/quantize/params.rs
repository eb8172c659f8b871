//! The quantizer's arithmetic: everything `docs/int8-spec.md` says the host computes.

use alexnet_core::arch::LrnSpec;
use alexnet_core::int8::{lrn_grid, lrn_max_sum, lrn_table_len, MAX_PRODUCT};
use alexnet_core::model::QParams;
use anyhow::{bail, Result};

/// `round`, halves away from zero (as `f64::round`).
fn round(x: f64) -> f64 {
    x.round()
}

/// Activation parameters for a calibrated range, widened to contain zero.
pub fn activation_params(lo: f32, hi: f32) -> QParams {
    let lo = lo.min(0.0) as f64;
    let mut hi = hi.max(0.0) as f64;
    if hi - lo < 1e-12 {
        hi = lo + 1e-12;
    }
    let scale = ((hi - lo) / 255.0) as f32;
    let zero_point = round(-128.0 - lo / scale as f64).clamp(-128.0, 127.0) as i32;
    QParams { scale, zero_point }
}

/// Per-output-channel symmetric weight scales and codes: `(codes, scales)`.
pub fn quantize_weights(weight: &[f32], out_channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = weight.len() / out_channels.max(1);
    let mut codes = Vec::with_capacity(weight.len());
    let mut scales = Vec::with_capacity(out_channels);
    for row in weight.chunks(per.max(1)) {
        let max = row.iter().fold(0.0f32, |m, &w| m.max(w.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(scale);
        codes.extend(
            row.iter()
                .map(|&w| round((w / scale) as f64).clamp(-127.0, 127.0) as i8),
        );
    }
    (codes, scales)
}

/// The Q31 multiplier and right shift of a real multiplier `m`; `None` if it is too large
/// (`m >= 2^30`). Multipliers below 2^-32 vanish: `(0, 1)`.
pub fn multiplier_and_shift(m: f64) -> Option<(i32, i32)> {
    if !(m.is_finite() && m >= 0.0) || m >= (1u64 << 30) as f64 {
        return None;
    }
    if m < 2f64.powi(-32) {
        return Some((0, 1));
    }
    // m = frac * 2^e, frac in [0.5, 1).
    let mut e = m.log2().floor() as i32 + 1;
    let mut frac = m / 2f64.powi(e);
    if frac >= 1.0 {
        frac /= 2.0;
        e += 1;
    }
    if frac < 0.5 {
        frac *= 2.0;
        e -= 1;
    }
    let mut q = round(frac * 2f64.powi(31)) as i64;
    if q == 1i64 << 31 {
        q = 1 << 30;
        e += 1;
    }
    let shift = 31 - e;
    if !(1..=62).contains(&shift) {
        return if shift > 62 { Some((0, 1)) } else { None };
    }
    Some((q as i32, shift))
}

/// Largest bias magnitude that keeps a `taps`-term accumulator within i32.
pub fn bias_limit(taps: usize) -> i64 {
    (i32::MAX as i64 - taps as i64 * MAX_PRODUCT).max(0)
}

/// An LRN layer's table and shift `Q` for input/output parameters `qin`, `qout`.
pub fn lrn_table(spec: &LrnSpec, qin: QParams, qout: QParams) -> Result<(Vec<i32>, u32)> {
    let s_in = qin.scale as f64;
    let ratio = s_in / qout.scale as f64;
    let alpha = spec.alpha_effective() as f64;
    let (k, beta) = (spec.k as f64, spec.beta as f64);
    let g = |sum: u64| ratio * (k + alpha * s_in * s_in * sum as f64).powf(-beta);
    let g0 = g(0);
    if g0 >= 2f64.powi(31) {
        bail!(
            "LRN: output scale {} is too small for input scale {s_in}: factor overflows",
            qout.scale
        );
    }
    let mut q = 0u32;
    while q < 62 && g0 * 2f64.powi(q as i32 + 1) < 2f64.powi(31) {
        q += 1;
    }
    let len = lrn_table_len(lrn_max_sum(spec.size));
    let scale = 2f64.powi(q as i32);
    let table = (0..len as u32)
        .map(|i| round(g(lrn_grid(i)) * scale).clamp(0.0, i32::MAX as f64) as i32)
        .collect();
    Ok((table, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipliers_round_trip() {
        for m in [1e-6, 0.001234, 0.25, 0.5, 0.75, 0.9999999, 1.0, 3.7, 1000.0] {
            let (q, r) = multiplier_and_shift(m).unwrap();
            let back = q as f64 * 2f64.powi(-r);
            assert!(
                (back - m).abs() <= m * 2f64.powi(-30),
                "{m}: {q} >> {r} = {back}"
            );
            assert!((1 << 30..=i32::MAX).contains(&q), "{m}: {q}");
        }
        assert_eq!(multiplier_and_shift(1e-12), Some((0, 1)));
        assert_eq!(multiplier_and_shift(2f64.powi(30)), None);
        assert_eq!(multiplier_and_shift(f64::NAN), None);
    }

    #[test]
    fn relu_output_uses_every_code() {
        let p = activation_params(0.0, 6.0);
        assert_eq!(p.zero_point, -128);
        assert!((p.scale - 6.0 / 255.0).abs() < 1e-7);
        let p = activation_params(-1.0, 1.0);
        assert_eq!(p.zero_point, -1); // round(-128 + 127.5) = round(-0.5), half away from zero
    }

    #[test]
    fn weights_are_symmetric_per_channel() {
        let (codes, scales) = quantize_weights(&[1.0, -0.5, 0.0, 0.03, -0.04, 0.0], 2);
        assert_eq!(codes, [127, -64, 0, 95, -127, 0]);
        assert_eq!(scales, [1.0 / 127.0, 0.04 / 127.0]);
    }
}
