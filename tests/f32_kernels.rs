//! The f32 post-processing (softmax, top-k) against the exact results, and the LRN's
//! conventions by hand. The layer kernels themselves run the shared suite
//! (`tests/kernel_suite.rs`).

use alexnet_core::arch::{LrnConvention, LrnSpec, Shape};
use alexnet_core::kernels::{Kernels, Reference};
use alexnet_core::postprocess;
use alexnet_tests::f64::gamma;
use alexnet_tests::{f64 as exact, U32};
use proptest::collection::vec;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn softmax_is_accurate(x in vec(-20.0f32..20.0, 1..50)) {
        let mut p = vec![0.0; x.len()];
        postprocess::softmax(&x, &mut p).unwrap();
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
        let n = postprocess::top_k(&x, &mut got);
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
        Reference.lrn(&mut out, Shape::new(5, 1, 1), &spec).unwrap();
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
