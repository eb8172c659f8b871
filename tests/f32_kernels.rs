//! Every f32 kernel of the core against the independent references, on fresh random cases:
//! bit for bit against the documented accumulation order (`reference::contract`), and within
//! the textbook rounding bound of the exact result (`reference::f64`).

use alexnet_core::arch::{ConvSpec, LrnConvention, LrnSpec, PoolSpec, Shape};
use alexnet_core::layers;
use alexnet_tests::f64::gamma;
use alexnet_tests::{contract, f64 as exact, ConvGeom, U32};
use proptest::collection::vec;
use proptest::prelude::*;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A valid convolution with groups, stride and padding, and its data.
fn conv_case() -> impl Strategy<Value = (ConvGeom, Vec<f32>, Vec<f32>, Vec<f32>)> {
    alexnet_tests::conv_geometry().prop_flat_map(|g| {
        let n_w = g.out_c * g.c / g.groups * g.k * g.k;
        (
            Just(g),
            vec(-2.0f32..2.0, g.c * g.h * g.w),
            vec(-1.0f32..1.0, n_w),
            vec(-1.0f32..1.0, g.out_c),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn conv_matches_contract_and_exact((g, input, weight, bias) in conv_case()) {
        let spec = ConvSpec {
            out_channels: g.out_c as u32,
            kernel: g.k as u32,
            stride: g.stride as u32,
            padding: g.pad as u32,
            groups: g.groups as u32,
        };
        let mut out = vec![0.0; g.out_c * g.out_h() * g.out_w()];
        let shape = layers::conv2d(&input, Shape::new(g.c, g.h, g.w), &spec, &weight, &bias, &mut out).unwrap();
        prop_assert_eq!(shape, Shape::new(g.out_c, g.out_h(), g.out_w()));
        prop_assert_eq!(bits(&out), bits(&contract::conv(&input, &weight, &bias, &g)));
        let (val, mag) = exact::conv(&input, &weight, &bias, &g);
        let taps = g.c / g.groups * g.k * g.k;
        for i in 0..out.len() {
            let err = (out[i] as f64 - val[i]).abs();
            prop_assert!(err <= gamma(taps + 1) * mag[i], "output {i}: {} vs {} (bound {})", out[i], val[i], gamma(taps + 1) * mag[i]);
        }
    }

    #[test]
    fn linear_matches_contract_and_exact(
        (input, weight, bias) in (1usize..=100, 1usize..=8).prop_flat_map(|(n, o)| {
            (vec(-2.0f32..2.0, n), vec(-1.0f32..1.0, n * o), vec(-1.0f32..1.0, o))
        })
    ) {
        let mut out = vec![0.0; bias.len()];
        layers::linear(&input, &weight, &bias, &mut out).unwrap();
        prop_assert_eq!(bits(&out), bits(&contract::linear(&input, &weight, &bias)));
        let (val, mag) = exact::linear(&input, &weight, &bias);
        for i in 0..out.len() {
            let bound = gamma(input.len() + 1) * mag[i];
            prop_assert!((out[i] as f64 - val[i]).abs() <= bound, "output {i}: {} vs {}", out[i], val[i]);
        }
    }

    #[test]
    fn lrn_matches_contract_and_exact(
        (c, plane, half, k, alpha, beta, averaged, input) in
            (1usize..=20, 1usize..=10, 0u32..=7, 0.5f32..3.0, 0.0f32..0.05, 0.0f32..1.0, any::<bool>())
                .prop_flat_map(|(c, plane, half, k, alpha, beta, averaged)| {
                    (Just(c), Just(plane), Just(half), Just(k), Just(alpha), Just(beta), Just(averaged), vec(-10.0f32..10.0, c * plane))
                })
    ) {
        let size = 2 * half + 1;
        let convention = if averaged { LrnConvention::AlphaOverN } else { LrnConvention::Paper };
        let spec = LrnSpec { size, alpha, beta, k, convention };
        let alpha_eff = spec.alpha_effective();
        prop_assert_eq!(alpha_eff, if averaged { alpha / size as f32 } else { alpha });
        let mut out = input.clone();
        layers::lrn_in_place(&mut out, Shape::new(c, plane, 1), &spec).unwrap();
        let n = size as usize;
        prop_assert_eq!(bits(&out), bits(&contract::lrn(&input, c, plane, n, k, alpha_eff, beta)));
        let val = exact::lrn(&input, c, plane, n, k as f64, alpha_eff as f64, beta as f64);
        let rel = beta as f64 * gamma(n + 2) + 4.0 * U32;
        for i in 0..out.len() {
            prop_assert!((out[i] as f64 - val[i]).abs() <= rel * val[i].abs(), "output {i}: {} vs {}", out[i], val[i]);
        }
    }

    #[test]
    fn max_pool_is_exact(
        (c, h, w, win, stride, input) in (1usize..=4, 0usize..8, 0usize..8, 1usize..=4, 1usize..=3)
            .prop_flat_map(|(c, dh, dw, win, stride)| {
                let (h, w) = (win + dh, win + dw);
                (Just(c), Just(h), Just(w), Just(win), Just(stride), vec(-5.0f32..5.0, c * h * w))
            })
    ) {
        let (oh, ow) = ((h - win) / stride + 1, (w - win) / stride + 1);
        let mut out = vec![0.0; c * oh * ow];
        let spec = PoolSpec { window: win as u32, stride: stride as u32 };
        layers::max_pool(&input, Shape::new(c, h, w), &spec, &mut out).unwrap();
        prop_assert_eq!(bits(&out), bits(&exact::max_pool(&input, c, h, w, win, stride)));
    }

    #[test]
    fn adaptive_avg_pool_matches_contract_and_exact(
        (c, h, w, oh, ow, input) in (1usize..=3, 1usize..=12, 1usize..=12)
            .prop_flat_map(|(c, h, w)| (Just(c), Just(h), Just(w), 1..=h, 1..=w, vec(-5.0f32..5.0, c * h * w)))
    ) {
        let mut out = vec![0.0; c * oh * ow];
        layers::adaptive_avg_pool(&input, Shape::new(c, h, w), oh as u32, ow as u32, &mut out).unwrap();
        prop_assert_eq!(bits(&out), bits(&contract::adaptive_avg_pool(&input, c, h, w, oh, ow)));
        let val = exact::adaptive_avg_pool(&input, c, h, w, oh, ow);
        for i in 0..out.len() {
            // Window of at most (h/oh + 2)(w/ow + 2) values: sum bound plus the division.
            let count = (h / oh + 2) * (w / ow + 2);
            let bound = (gamma(count) + U32) * 5.0;
            prop_assert!((out[i] as f64 - val[i]).abs() <= bound, "output {i}: {} vs {}", out[i], val[i]);
        }
    }

    #[test]
    fn softmax_is_accurate(x in vec(-20.0f32..20.0, 1..50)) {
        let mut p = vec![0.0; x.len()];
        layers::softmax(&x, &mut p).unwrap();
        let exact_p = exact::softmax(&x);
        // exp(x - max) loses up to |x - max| * u in the subtraction, 1 ulp in expf; the sum
        // of n positive terms gamma(n); the division u.
        let rel = (2.0 * 40.0 + 4.0) * U32 + gamma(x.len()) + U32;
        for i in 0..x.len() {
            prop_assert!((p[i] as f64 - exact_p[i]).abs() <= rel * exact_p[i], "{i}: {} vs {}", p[i], exact_p[i]);
        }
    }

    #[test]
    fn top_k_matches_a_sort(x in vec(prop_oneof![Just(f32::NAN), Just(0.5f32), -3.0f32..3.0], 0..30), k in 0usize..12) {
        let mut expected: Vec<usize> = (0..x.len()).collect();
        let key = |i: &usize| if x[*i].is_nan() { f32::NEG_INFINITY } else { x[*i] };
        // Descending score, NaN last, ties by index: a stable sort on the negated key.
        expected.sort_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            let nan = (x[*a].is_nan(), x[*b].is_nan());
            nan.0.cmp(&nan.1).then(kb.partial_cmp(&ka).unwrap()).then(a.cmp(b))
        });
        expected.truncate(k);
        let mut got = vec![usize::MAX; k];
        let n = layers::top_k(&x, &mut got);
        prop_assert_eq!(&got[..n], &expected[..]);
    }
}

#[test]
fn lrn_edges_and_conventions_by_hand() {
    // Five channels of one pixel, the paper's n = 5: channel 0 sees channels 0..=2 only.
    let input = [1.0f32, 2.0, 3.0, 4.0, 5.0];
    for (convention, alpha_eff) in [
        (LrnConvention::Paper, 1e-4f32),
        (LrnConvention::AlphaOverN, 1e-4 / 5.0),
    ] {
        let spec = LrnSpec {
            size: 5,
            alpha: 1e-4,
            beta: 0.75,
            k: 2.0,
            convention,
        };
        let mut out = input;
        layers::lrn_in_place(&mut out, Shape::new(5, 1, 1), &spec).unwrap();
        let s0 = 1.0 + 4.0 + 9.0;
        let expect0 = 1.0 / (2.0 + alpha_eff as f64 * s0).powf(0.75);
        assert!(
            (out[0] as f64 - expect0).abs() < 1e-7,
            "{convention:?}: {} vs {expect0}",
            out[0]
        );
        let s4 = 9.0 + 16.0 + 25.0;
        let expect4 = 5.0 / (2.0 + alpha_eff as f64 * s4).powf(0.75);
        assert!(
            (out[4] as f64 - expect4).abs() < 1e-6,
            "{convention:?}: {} vs {expect4}",
            out[4]
        );
    }
}
