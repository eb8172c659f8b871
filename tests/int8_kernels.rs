//! The int8 contract's arithmetic against the independent reference (`reference/int8.rs`):
//! requantization, the DSP instructions' emulation, the LRN table's grid, and the LRN tables
//! the quantizer makes, bit for bit against tables derived from `docs/int8-spec.md`. The
//! layer kernels themselves run the shared suite (`tests/kernel_suite.rs`).

use alexnet_core::arch::{LrnConvention, LrnSpec};
use alexnet_core::int8::{self, requant};
use alexnet_core::kernels::cortex_m::dsp;
use alexnet_core::model::QParams;
use alexnet_host::quantize::params::lrn_table;
use alexnet_tests::int8 as reference;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The quantizer's LRN tables (`alexnet_host::quantize::params::lrn_table`) against the
    /// spec's definition, re-derived in `reference::lrn_table`: the same shift, length and
    /// every entry, for every size and both conventions.
    #[test]
    fn quantizer_lrn_tables_match_the_spec(
        half in 0u32..=7,
        alpha in 1e-6f32..1e-2,
        beta in 0.5f32..1.0,
        k in 0.5f32..3.0,
        averaged in any::<bool>(),
        s_in in 1e-3f32..1.0,
        s_out_ratio in 0.01f32..2.0,
    ) {
        let size = 2 * half + 1;
        let convention = if averaged { LrnConvention::AlphaOverN } else { LrnConvention::Paper };
        let spec = LrnSpec { size, alpha, beta, k, convention };
        let s_out = s_in * s_out_ratio;
        let qin = QParams { scale: s_in, zero_point: -3 };
        let qout = QParams { scale: s_out, zero_point: 5 };
        let want = reference::lrn_table(
            size as usize,
            spec.alpha_effective() as f64,
            beta as f64,
            k as f64,
            s_in as f64,
            s_out as f64,
        );
        match (lrn_table(&spec, qin, qout), want) {
            (Ok((table, q)), Some((want_table, want_q))) => {
                prop_assert_eq!(q, want_q);
                prop_assert_eq!(table, want_table);
            }
            (Err(_), None) => {}
            (got, want) => prop_assert!(false, "quantizer {:?}, spec {:?}", got.map(|t| t.1), want.map(|t| t.1)),
        }
    }

    #[test]
    fn requantize_matches(acc in any::<i32>(), m in 0i32..=i32::MAX, r in 1i32..=62, zp in -128i32..=127) {
        prop_assert_eq!(requant::requantize(acc, m, r), reference::requantize(acc as i64, m, r));
        prop_assert_eq!(requant::output_code(acc, m, r, zp), reference::clamp8(zp as i64 + reference::requantize(acc as i64, m, r)));
    }

    #[test]
    fn dsp_instructions_match_their_definitions(a in any::<u32>(), b in any::<u32>(), acc in any::<i32>()) {
        use dsp::{smlad, sxtb16, sxtb16_ror8};
        let lanes = |x: u32| (x as u16 as i16 as i32, (x >> 16) as u16 as i16 as i32);
        prop_assert_eq!(lanes(sxtb16(a)), ((a as u8 as i8) as i32, ((a >> 16) as u8 as i8) as i32));
        prop_assert_eq!(lanes(sxtb16_ror8(a)), (((a >> 8) as u8 as i8) as i32, ((a >> 24) as u8 as i8) as i32));
        let ((a0, a1), (b0, b1)) = (lanes(a), lanes(b));
        prop_assert_eq!(smlad(a, b, acc), (acc as i64 + (a0 * b0) as i64 + (a1 * b1) as i64) as i32);
    }

}

#[test]
fn lrn_table_layout_matches_the_spec() {
    for i in 0..700u32 {
        assert_eq!(
            int8::lrn_grid(i),
            reference::lrn_grid(i as usize),
            "entry {i}"
        );
    }
    assert_eq!(int8::lrn_table_len(int8::lrn_max_sum(5)), 457);
}
