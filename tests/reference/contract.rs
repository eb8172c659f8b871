//! The f32 numeric contract of `docs/numerics-f32.md`, re-derived as naive loops: one output
//! at a time, in exactly the documented order. The core must equal these bit for bit.

use crate::ConvGeom;

/// Convolution: bias first, then every tap (padding as +0.0 input) in (channel, row, column)
/// order, product rounded, then added.
pub fn conv(input: &[f32], weight: &[f32], bias: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let cin_g = g.c / g.groups;
    let cout_g = g.out_c / g.groups;
    let mut out = Vec::with_capacity(g.out_c * oh * ow);
    for o in 0..g.out_c {
        let grp = o / cout_g;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = bias[o];
                for i in 0..cin_g {
                    for ky in 0..g.k {
                        for kx in 0..g.k {
                            let x = g.at(
                                input,
                                grp * cin_g + i,
                                oy * g.stride + ky,
                                ox * g.stride + kx,
                            );
                            let w = weight[((o * cin_g + i) * g.k + ky) * g.k + kx];
                            acc += x.unwrap_or(0.0) * w;
                        }
                    }
                }
                out.push(acc);
            }
        }
    }
    out
}

/// Linear: 16 lane sums (input i into lane i % 16), folded by halves 8, 4, 2, 1, then + bias.
pub fn linear(input: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let n = input.len();
    (0..bias.len())
        .map(|o| {
            let mut lanes = [0.0f32; 16];
            for i in 0..n {
                lanes[i % 16] += input[i] * weight[o * n + i];
            }
            for width in [8, 4, 2, 1] {
                for l in 0..width {
                    lanes[l] += lanes[l + width];
                }
            }
            lanes[0] + bias[o]
        })
        .collect()
}

/// LRN (contract version 2): S from 0.0 over the clipped window ascending, then alpha * S,
/// k +, the power, divide. The power for beta = 0.75 is `sqrt(base * sqrt(base))` with the
/// standard library's (hardware) square root, else `libm::powf`.
pub fn lrn(
    input: &[f32],
    c: usize,
    plane: usize,
    n: usize,
    k: f32,
    alpha_eff: f32,
    beta: f32,
) -> Vec<f32> {
    let half = n / 2;
    let mut out = vec![0.0; input.len()];
    for ch in 0..c {
        for p in 0..plane {
            let mut s = 0.0f32;
            for j in ch.saturating_sub(half)..=(ch + half).min(c - 1) {
                let v = input[j * plane + p];
                s += v * v;
            }
            let base = k + alpha_eff * s;
            let power = if beta == 0.75 {
                (base * base.sqrt()).sqrt()
            } else {
                libm::powf(base, beta)
            };
            out[ch * plane + p] = input[ch * plane + p] / power;
        }
    }
    out
}

/// ReLU: negatives to zero, everything else (NaN included) unchanged.
pub fn relu(x: &mut [f32]) {
    for v in x {
        if *v < 0.0 {
            *v = 0.0;
        }
    }
}

/// Adaptive average pooling: sum from 0.0 row by row, divided by the count.
pub fn adaptive_avg_pool(
    input: &[f32],
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for oy in 0..oh {
            let (y0, y1) = ((oy * h) / oh, ((oy + 1) * h).div_ceil(oh));
            for ox in 0..ow {
                let (x0, x1) = ((ox * w) / ow, ((ox + 1) * w).div_ceil(ow));
                let mut s = 0.0f32;
                for y in y0..y1 {
                    for x in x0..x1 {
                        s += input[(ch * h + y) * w + x];
                    }
                }
                out.push(s / ((y1 - y0) * (x1 - x0)) as f32);
            }
        }
    }
    out
}

/// A whole network, layer by layer with the functions above, on a host-side model spec.
/// Returns every layer's output, so tests can point at the first layer that differs.
pub fn forward(spec: &alexnet_host::ModelSpec, input: &[f32]) -> Vec<Vec<f32>> {
    use alexnet_core::arch::{Layer, LrnConvention};
    let (mut c, mut h, mut w) = (spec.input.c, spec.input.h, spec.input.w);
    let mut x = input.to_vec();
    let mut outputs = Vec::new();
    for (i, layer) in spec.layers.iter().enumerate() {
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
                let p = spec.params[i].as_ref().expect("conv params");
                let y = conv(&x, &p.weight, &p.bias, &g);
                (c, h, w) = (g.out_c, g.out_h(), g.out_w());
                y
            }
            Layer::Relu => {
                relu(&mut x);
                x
            }
            Layer::Lrn(l) => {
                let alpha = match l.convention {
                    LrnConvention::Paper => l.alpha,
                    LrnConvention::AlphaOverN => l.alpha / l.size as f32,
                };
                lrn(&x, c, h * w, l.size as usize, l.k, alpha, l.beta)
            }
            Layer::MaxPool(p) => {
                let (win, s) = (p.window as usize, p.stride as usize);
                let y = crate::f64::max_pool(&x, c, h, w, win, s);
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
            Layer::Linear { out_features } => {
                let p = spec.params[i].as_ref().expect("linear params");
                c = *out_features as usize;
                linear(&x, &p.weight, &p.bias)
            }
            Layer::Dropout { .. } | Layer::Softmax => x,
        };
        outputs.push(x.clone());
    }
    outputs
}
