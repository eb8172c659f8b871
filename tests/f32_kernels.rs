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

/// The error of a result against the exact value: in ulps of the exact value's `f32`
/// neighbourhood (the distance between the two `f32`s around it), and relative, in units of
/// `U32` (2^-24, the unit roundoff).
fn errors(got: f32, exact: f64) -> (f64, f64) {
    let e = exact as f32;
    let ulp = if (e as f64) <= exact {
        (f32::from_bits(e.to_bits() + 1) as f64) - e as f64
    } else {
        e as f64 - f32::from_bits(e.to_bits() - 1) as f64
    };
    let diff = (got as f64 - exact).abs();
    (diff / ulp, diff / exact / U32)
}

/// The f32 contract's LRN power for beta = 0.75 (version 2: `sqrt(base * sqrt(base))`)
/// against the exact power, over every `f32` in `[1, 4)` (a factor of 4 takes both square
/// roots' exponents through every parity) and a million bases spread over `[2^-60, 2^60]`;
/// `libm::powf` (version 1) beside it, for the record. Three correctly rounded operations
/// bound the relative error by `sqrt((1 + u)^2) (1 + u) - 1`, about `2u`. Run with
/// `--nocapture` for the figures (`docs/numerics-f32.md` quotes them).
#[test]
fn lrn_power_three_quarters_is_within_two_units_of_roundoff() {
    // (worst ulps, worst relative, base of the worst relative, sum of ulps) per form.
    let mut sqrt_form = (0.0f64, 0.0f64, 0.0f32, 0.0f64);
    let mut powf_form = sqrt_form;
    let mut count = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let spread = (0..1_000_000).map(|_| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (((seed >> 11) as f64 / (1u64 << 53) as f64) * 120.0 - 60.0).exp2() as f32
    });
    let every = (1.0f32.to_bits()..4.0f32.to_bits()).map(f32::from_bits);
    let record = |form: &mut (f64, f64, f32, f64), (ulps, rel): (f64, f64), base: f32| {
        form.0 = form.0.max(ulps);
        if rel > form.1 {
            (form.1, form.2) = (rel, base);
        }
        form.3 += ulps;
    };
    for base in every.chain(spread) {
        let exact = (base as f64).powf(0.75);
        let by_sqrt = alexnet_core::kernels::reference::f32::lrn_denominator(base, 0.75);
        record(&mut sqrt_form, errors(by_sqrt, exact), base);
        record(&mut powf_form, errors(libm::powf(base, 0.75), exact), base);
        count += 1;
    }
    for (name, form) in [("sqrt form", sqrt_form), ("libm::powf", powf_form)] {
        println!(
            "x^0.75, {name}, {count} bases: worst {:.3} ulp, mean {:.3} ulp; worst relative \
             {:.3} u (at {:e})",
            form.0,
            form.3 / count as f64,
            form.1,
            form.2
        );
    }
    assert!(sqrt_form.1 <= 2.0 + 1e-6, "{sqrt_form:?}");
}
