//! The layers in f64. Each returns the value and the magnitude `sum |term|` that bounds the
//! rounding error of an f32 evaluation: |f32 - exact| <= gamma(n) * magnitude.

use crate::ConvGeom;

/// gamma(n) = n u / (1 - n u), the classic bound for a recursive sum of n terms in f32.
pub fn gamma(n: usize) -> f64 {
    let nu = n as f64 * crate::U32;
    nu / (1.0 - nu)
}

/// Convolution: (values, magnitudes), `[out_c, out_h, out_w]`.
pub fn conv(input: &[f32], weight: &[f32], bias: &[f32], g: &ConvGeom) -> (Vec<f64>, Vec<f64>) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let cin_g = g.c / g.groups;
    let cout_g = g.out_c / g.groups;
    let mut val = vec![0.0; g.out_c * oh * ow];
    let mut mag = vec![0.0; g.out_c * oh * ow];
    for o in 0..g.out_c {
        let grp = o / cout_g;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut v = bias[o] as f64;
                let mut m = (bias[o] as f64).abs();
                for i in 0..cin_g {
                    for ky in 0..g.k {
                        for kx in 0..g.k {
                            let x = g.at(
                                input,
                                grp * cin_g + i,
                                oy * g.stride + ky,
                                ox * g.stride + kx,
                            );
                            let wv = weight[((o * cin_g + i) * g.k + ky) * g.k + kx] as f64;
                            let t = x.unwrap_or(0.0) as f64 * wv;
                            v += t;
                            m += t.abs();
                        }
                    }
                }
                val[(o * oh + oy) * ow + ox] = v;
                mag[(o * oh + oy) * ow + ox] = m;
            }
        }
    }
    (val, mag)
}

/// Linear layer, weight `[out, in]`: (values, magnitudes).
pub fn linear(input: &[f32], weight: &[f32], bias: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let n = input.len();
    bias.iter()
        .enumerate()
        .map(|(o, &b)| {
            let row = &weight[o * n..(o + 1) * n];
            let terms = input.iter().zip(row).map(|(&x, &w)| x as f64 * w as f64);
            let v = b as f64 + terms.clone().sum::<f64>();
            let m = (b as f64).abs() + terms.map(f64::abs).sum::<f64>();
            (v, m)
        })
        .unzip()
}

/// LRN over channels of `[c, plane]`; `alpha_eff` already includes any division by n.
pub fn lrn(
    input: &[f32],
    c: usize,
    plane: usize,
    n: usize,
    k: f64,
    alpha_eff: f64,
    beta: f64,
) -> Vec<f64> {
    let half = n / 2;
    let mut out = vec![0.0; input.len()];
    for ch in 0..c {
        let lo = ch.saturating_sub(half);
        let hi = (ch + half).min(c - 1);
        for p in 0..plane {
            let s: f64 = (lo..=hi)
                .map(|j| (input[j * plane + p] as f64).powi(2))
                .sum();
            out[ch * plane + p] = input[ch * plane + p] as f64 / (k + alpha_eff * s).powf(beta);
        }
    }
    out
}

/// Max pooling, `[c, h, w]`, no padding, by the rule of `docs/numerics-f32.md`: the window
/// is read row by row; the result is NaN if any value is NaN, else the largest value, and of
/// equal largest values (`-0.0` and `0.0`) the first one read.
pub fn max_pool(input: &[f32], c: usize, h: usize, w: usize, win: usize, s: usize) -> Vec<f32> {
    let (oh, ow) = ((h - win) / s + 1, (w - win) / s + 1);
    let mut out = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let window: Vec<f32> = (oy * s..oy * s + win)
                    .flat_map(|y| (ox * s..ox * s + win).map(move |x| (y, x)))
                    .map(|(y, x)| input[(ch * h + y) * w + x])
                    .collect();
                let pick = if window.iter().any(|v| v.is_nan()) {
                    f32::NAN
                } else {
                    let top = window.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    // `f32::max` may return either zero of `max(-0.0, 0.0)`; take the first
                    // value read that equals the maximum.
                    window.iter().copied().find(|&v| v == top).unwrap_or(top)
                };
                out.push(pick);
            }
        }
    }
    out
}

/// Adaptive average pooling as PyTorch defines its windows.
pub fn adaptive_avg_pool(
    input: &[f32],
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for oy in 0..oh {
            let (y0, y1) = ((oy * h) / oh, ((oy + 1) * h).div_ceil(oh));
            for ox in 0..ow {
                let (x0, x1) = ((ox * w) / ow, ((ox + 1) * w).div_ceil(ow));
                let mut s = 0.0;
                for y in y0..y1 {
                    for x in x0..x1 {
                        s += input[(ch * h + y) * w + x] as f64;
                    }
                }
                out.push(s / ((y1 - y0) * (x1 - x0)) as f64);
            }
        }
    }
    out
}

/// Softmax in f64.
pub fn softmax(x: &[f32]) -> Vec<f64> {
    let m = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let e: Vec<f64> = x.iter().map(|&v| (v as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}
