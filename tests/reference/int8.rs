//! The int8 contract of `docs/int8-spec.md`, re-derived from the text as naive loops, one
//! output at a time. It shares no code with the core's kernels: the tests require equality.

use crate::ConvGeom;

/// `(acc * m + 2^(r-1)) >> r`, in i128 so that nothing here can overflow.
pub fn requantize(acc: i64, m: i32, r: i32) -> i64 {
    ((acc as i128 * m as i128 + (1i128 << (r - 1))) >> r) as i64
}

/// Clamp to [-128, 127].
pub fn clamp8(v: i64) -> i8 {
    v.clamp(-128, 127) as i8
}

/// Per-channel requantization parameters of a convolution or linear layer.
pub struct Requant<'a> {
    pub bias: &'a [i32],
    pub multiplier: &'a [i32],
    pub shift: &'a [i32],
    pub zp_in: i32,
    pub zp_out: i32,
}

/// Convolution: padding has real value zero, i.e. the code `zp_in`, so it adds nothing.
pub fn conv(input: &[i8], weight: &[i8], g: &ConvGeom, q: &Requant) -> Vec<i8> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let cin_g = g.c / g.groups;
    let cout_g = g.out_c / g.groups;
    let mut out = Vec::new();
    for o in 0..g.out_c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = q.bias[o] as i64;
                for i in 0..cin_g {
                    let ch = (o / cout_g) * cin_g + i;
                    for ky in 0..g.k {
                        for kx in 0..g.k {
                            let (y, x) = (oy * g.stride + ky, ox * g.stride + kx);
                            if y < g.pad || x < g.pad || y - g.pad >= g.h || x - g.pad >= g.w {
                                continue;
                            }
                            let v = input[(ch * g.h + y - g.pad) * g.w + x - g.pad] as i64;
                            let w = weight[((o * cin_g + i) * g.k + ky) * g.k + kx] as i64;
                            acc += (v - q.zp_in as i64) * w;
                        }
                    }
                }
                assert!(
                    acc >= i32::MIN as i64 && acc <= i32::MAX as i64,
                    "accumulator overflow"
                );
                out.push(clamp8(
                    q.zp_out as i64 + requantize(acc, q.multiplier[o], q.shift[o]),
                ));
            }
        }
    }
    out
}

/// Fully connected layer.
pub fn linear(input: &[i8], weight: &[i8], q: &Requant) -> Vec<i8> {
    let n = input.len();
    (0..q.bias.len())
        .map(|o| {
            let acc: i64 = q.bias[o] as i64
                + (0..n)
                    .map(|i| (input[i] as i64 - q.zp_in as i64) * weight[o * n + i] as i64)
                    .sum::<i64>();
            clamp8(q.zp_out as i64 + requantize(acc, q.multiplier[o], q.shift[o]))
        })
        .collect()
}

/// ReLU on codes.
pub fn relu(x: &[i8], zp: i32) -> Vec<i8> {
    x.iter().map(|&v| (v as i32).max(zp) as i8).collect()
}

/// Max pooling on codes.
pub fn max_pool(input: &[i8], c: usize, h: usize, w: usize, win: usize, s: usize) -> Vec<i8> {
    let (oh, ow) = ((h - win) / s + 1, (w - win) / s + 1);
    let mut out = Vec::new();
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut m = i8::MIN;
                for y in oy * s..oy * s + win {
                    for x in ox * s..ox * s + win {
                        m = m.max(input[(ch * h + y) * w + x]);
                    }
                }
                out.push(m);
            }
        }
    }
    out
}

/// Adaptive average pooling on codes: floor((2 sum + n) / (2 n)).
pub fn adaptive_avg_pool(
    input: &[i8],
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
) -> Vec<i8> {
    let mut out = Vec::new();
    for ch in 0..c {
        for oy in 0..oh {
            let (y0, y1) = (oy * h / oh, ((oy + 1) * h).div_ceil(oh));
            for ox in 0..ow {
                let (x0, x1) = (ox * w / ow, ((ox + 1) * w).div_ceil(ow));
                let mut sum = 0i64;
                for y in y0..y1 {
                    for x in x0..x1 {
                        sum += input[(ch * h + y) * w + x] as i64;
                    }
                }
                let n = ((y1 - y0) * (x1 - x0)) as i64;
                out.push(clamp8((2 * sum + n).div_euclid(2 * n)));
            }
        }
    }
    out
}

/// The table value for sum `s`, as the spec's lookup describes it.
pub fn lrn_factor(table: &[i32], s: u64) -> i64 {
    if s < 64 {
        return table[s as usize] as i64;
    }
    let mut e = 0;
    while (s >> (e + 1)) != 0 {
        e += 1;
    }
    let sh = e - 5;
    let i = (64 + 32 * (e - 6) + (s >> sh) - 32) as usize;
    let f = (s - ((s >> sh) << sh)) as i64;
    let (g0, g1) = (table[i] as i64, table[i + 1] as i64);
    g0 + (((g1 - g0) * f + (1i64 << (sh - 1))) >> sh)
}

/// The spec's grid: the sum of squares each table entry stands for.
pub fn lrn_grid(i: usize) -> u64 {
    if i < 64 {
        i as u64
    } else {
        let (octave, j) = ((i - 64) / 32, (i - 64) % 32);
        ((32 + j) as u64) << (octave + 1)
    }
}

/// An LRN layer's table and shift `Q`, derived from `docs/int8-spec.md` alone:
/// `g(S) = (s_in / s_out) * (k + alpha' s_in^2 S)^(-beta)`, `Q` the largest in [0, 62] with
/// `g(0) * 2^Q < 2^31`, `G[i] = round(g(grid(i)) * 2^Q)` (half away from zero), one entry per
/// grid point at or below the largest sum `n * 255^2` plus the next one (which the lookup of
/// that sum interpolates towards). `None` when even `Q = 0` overflows.
pub fn lrn_table(
    n: usize,
    alpha_eff: f64,
    beta: f64,
    k: f64,
    s_in: f64,
    s_out: f64,
) -> Option<(Vec<i32>, u32)> {
    let g = |sum: u64| (s_in / s_out) * (k + alpha_eff * s_in * s_in * sum as f64).powf(-beta);
    let limit = 2f64.powi(31);
    if g(0) >= limit {
        return None;
    }
    let q = (0..=62u32)
        .rev()
        .find(|&q| g(0) * 2f64.powi(q as i32) < limit)?;
    let max_sum = n as u64 * 255 * 255;
    let at_or_below = (0..).take_while(|&i| lrn_grid(i) <= max_sum).count();
    let table = (0..=at_or_below)
        .map(|i| (g(lrn_grid(i)) * 2f64.powi(q as i32)).round() as i32)
        .collect();
    Some((table, q))
}

/// Integer LRN over `[c, plane]` codes.
#[allow(clippy::too_many_arguments)]
pub fn lrn(
    input: &[i8],
    c: usize,
    plane: usize,
    n: usize,
    table: &[i32],
    q: u32,
    zp_in: i32,
    zp_out: i32,
) -> Vec<i8> {
    let half = n / 2;
    let mut out = vec![0i8; input.len()];
    for ch in 0..c {
        for p in 0..plane {
            let d = |j: usize| input[j * plane + p] as i64 - zp_in as i64;
            let s: i64 = (ch.saturating_sub(half)..=(ch + half).min(c - 1))
                .map(|j| d(j) * d(j))
                .sum();
            let g = lrn_factor(table, s as u64);
            let round = if q == 0 { 0 } else { 1i64 << (q - 1) };
            out[ch * plane + p] = clamp8(zp_out as i64 + ((d(ch) * g + round) >> q));
        }
    }
    out
}

/// A whole int8 network on a quantized host spec; every layer's output codes.
pub fn forward(spec: &alexnet_host::ModelSpec, input: &[i8]) -> Vec<Vec<i8>> {
    use alexnet_core::arch::Layer;
    let quant = spec.quant.as_ref().expect("an int8 spec");
    let (mut c, mut h, mut w) = (spec.input.c, spec.input.h, spec.input.w);
    let mut zp = quant.input.zero_point;
    let mut x = input.to_vec();
    let mut outputs = Vec::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        let ql = &quant.layers[i];
        let zp_out = ql.output.zero_point;
        x = match layer {
            Layer::Conv(cs) => {
                let g = ConvGeom {
                    c,
                    h,
                    w,
                    out_c: cs.out_channels as usize,
                    k: cs.kernel as usize,
                    stride: cs.stride as usize,
                    pad: cs.padding as usize,
                    groups: cs.groups as usize,
                };
                let k = ql.kernel.as_ref().unwrap();
                let rq = Requant {
                    bias: &k.bias,
                    multiplier: &k.multiplier,
                    shift: &k.shift,
                    zp_in: zp,
                    zp_out,
                };
                let y = conv(&x, &k.weight, &g, &rq);
                (c, h, w) = (g.out_c, g.out_h(), g.out_w());
                y
            }
            Layer::Linear { out_features } => {
                let k = ql.kernel.as_ref().unwrap();
                let rq = Requant {
                    bias: &k.bias,
                    multiplier: &k.multiplier,
                    shift: &k.shift,
                    zp_in: zp,
                    zp_out,
                };
                c = *out_features as usize;
                (h, w) = (1, 1);
                linear(&x, &k.weight, &rq)
            }
            Layer::Relu => relu(&x, zp_out),
            Layer::Lrn(l) => {
                let (table, q) = ql.lrn.as_ref().unwrap();
                lrn(&x, c, h * w, l.size as usize, table, *q, zp, zp_out)
            }
            Layer::MaxPool(p) => {
                let (win, s) = (p.window as usize, p.stride as usize);
                let y = max_pool(&x, c, h, w, win, s);
                (h, w) = ((h - win) / s + 1, (w - win) / s + 1);
                y
            }
            Layer::AdaptiveAvgPool { out_h, out_w } => {
                let y = adaptive_avg_pool(&x, c, h, w, *out_h as usize, *out_w as usize);
                (h, w) = (*out_h as usize, *out_w as usize);
                y
            }
            Layer::Flatten => {
                (c, h, w) = (c * h * w, 1, 1);
                x
            }
            Layer::Dropout { .. } | Layer::Softmax => x,
        };
        zp = zp_out;
        outputs.push(x.clone());
    }
    outputs
}
