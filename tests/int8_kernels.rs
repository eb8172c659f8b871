//! Every int8 kernel of the core against the independent reference (`reference/int8.rs`),
//! bit for bit, on fresh random shapes and parameters.

use alexnet_core::arch::{ConvSpec, LrnConvention, LrnSpec, PoolSpec, Shape};
use alexnet_core::int8::{self, requant, QKernel, ZeroPoints};
use alexnet_tests::int8 as reference;
use alexnet_tests::ConvGeom;
use proptest::collection::vec;
use proptest::prelude::*;

/// Per-channel requantization parameters within the contract's ranges.
fn requant_params(n: usize) -> impl Strategy<Value = Requant> {
    (
        vec(-(1i32 << 20)..(1 << 20), n),
        vec((1i32 << 30)..=i32::MAX, n),
        vec(prop_oneof![3 => 12i32..=30, 1 => 1i32..=62], n),
    )
}

/// Bias, multiplier and shift per output channel.
type Requant = (Vec<i32>, Vec<i32>, Vec<i32>);
/// Geometry, input codes, weights, requantization, input and output zero points.
type ConvCase = (ConvGeom, Vec<i8>, Vec<i8>, Requant, i32, i32);

fn conv_case() -> impl Strategy<Value = ConvCase> {
    alexnet_tests::conv_geometry().prop_flat_map(|g| {
        (
            Just(g),
            vec(any::<i8>(), g.c * g.h * g.w),
            vec(-127i8..=127, g.out_c * g.c / g.groups * g.k * g.k),
            requant_params(g.out_c),
            -128i32..=127,
            -128i32..=127,
        )
    })
}

/// In the "exact" regime every unit of the accumulator shows in the output: tiny weights and
/// inputs, multiplier 1 (`m = 2^30`, `r = 30`), small biases. Without it, requantization hides
/// off-by-one accumulation errors.
#[allow(clippy::type_complexity)]
fn sensitive(
    exact: bool,
    input: Vec<i8>,
    weight: Vec<i8>,
    bias: Vec<i32>,
    multiplier: Vec<i32>,
    shift: Vec<i32>,
    zp_in: i32,
) -> (Vec<i8>, Vec<i8>, Vec<i32>, Vec<i32>, Vec<i32>, i32) {
    if !exact {
        return (input, weight, bias, multiplier, shift, zp_in);
    }
    (
        input.iter().map(|&x| x % 3).collect(),
        weight.iter().map(|&w| w % 2).collect(),
        bias.iter().map(|&b| b % 20).collect(),
        vec![1 << 30; multiplier.len()],
        vec![30; shift.len()],
        0,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn requantize_matches(acc in any::<i32>(), m in 0i32..=i32::MAX, r in 1i32..=62, zp in -128i32..=127) {
        prop_assert_eq!(requant::requantize(acc, m, r), reference::requantize(acc as i64, m, r));
        prop_assert_eq!(requant::output_code(acc, m, r, zp), reference::clamp8(zp as i64 + reference::requantize(acc as i64, m, r)));
    }

    #[test]
    fn conv_matches((g, input, weight, (bias, multiplier, shift), zp_in, zp_out) in conv_case(), exact in any::<bool>()) {
        let (input, weight, bias, multiplier, shift, zp_in) = sensitive(exact, input, weight, bias, multiplier, shift, zp_in);
        let spec = ConvSpec { out_channels: g.out_c as u32, kernel: g.k as u32, stride: g.stride as u32, padding: g.pad as u32, groups: g.groups as u32 };
        let kernel = QKernel { weight: &weight, bias: &bias, multiplier: &multiplier, shift: &shift, packed: None };
        let mut out = vec![0i8; g.out_c * g.out_h() * g.out_w()];
        int8::conv2d(&input, Shape::new(g.c, g.h, g.w), &spec, &kernel, ZeroPoints { input: zp_in, output: zp_out }, &mut out).unwrap();
        let rq = reference::Requant { bias: &bias, multiplier: &multiplier, shift: &shift, zp_in, zp_out };
        prop_assert_eq!(out, reference::conv(&input, &weight, &g, &rq));
    }

    /// The DSP kernel (here with the portable definitions of its instructions) equals the
    /// reference, and therefore the generic kernel.
    #[test]
    fn dsp_conv_matches((g, input, weight, (bias, multiplier, shift), zp_in, zp_out) in conv_case(), exact in any::<bool>()) {
        let (input, weight, bias, multiplier, shift, zp_in) = sensitive(exact, input, weight, bias, multiplier, shift, zp_in);
        let spec = ConvSpec { out_channels: g.out_c as u32, kernel: g.k as u32, stride: g.stride as u32, padding: g.pad as u32, groups: g.groups as u32 };
        let kernel = QKernel { weight: &weight, bias: &bias, multiplier: &multiplier, shift: &shift, packed: None };
        let zps = ZeroPoints { input: zp_in, output: zp_out };
        let mut dsp = vec![0i8; g.out_c * g.out_h() * g.out_w()];
        int8::dsp::conv2d(&input, Shape::new(g.c, g.h, g.w), &spec, &kernel, zps, &mut dsp).unwrap();
        let mut generic = vec![0i8; dsp.len()];
        int8::conv2d_generic(&input, Shape::new(g.c, g.h, g.w), &spec, &kernel, zps, &mut generic).unwrap();
        prop_assert_eq!(&dsp, &generic);
        let rq = reference::Requant { bias: &bias, multiplier: &multiplier, shift: &shift, zp_in, zp_out };
        prop_assert_eq!(dsp, reference::conv(&input, &weight, &g, &rq));
    }

    /// The DSP kernel on weights prepacked in the layout the host writes (here with the
    /// portable definitions of its instructions) equals the generic kernel and the reference.
    #[test]
    fn dsp_packed_conv_matches((g, input, weight, (bias, multiplier, shift), zp_in, zp_out) in conv_case(), exact in any::<bool>(), high_shift in any::<bool>()) {
        let (input, weight, bias, multiplier, mut shift, zp_in) = sensitive(exact, input, weight, bias, multiplier, shift, zp_in);
        if high_shift && !exact {
            // The shifts real layers have (>= 33), which take the kernel's short requantization.
            shift.iter_mut().for_each(|r| *r = 33 + *r % 30);
        }
        let spec = ConvSpec { out_channels: g.out_c as u32, kernel: g.k as u32, stride: g.stride as u32, padding: g.pad as u32, groups: g.groups as u32 };
        let in_shape = Shape::new(g.c, g.h, g.w);
        let layout = int8::packed::PackedGeometry::new(&spec, in_shape).unwrap();
        // The packed kernel itself must run, not its fallback.
        prop_assert!(int8::dsp::packed_fits(&spec, in_shape));
        // Word-aligned storage, as in a blob.
        let mut words = vec![0u32; layout.len().div_ceil(2)];
        let packed: &mut [i16] = &mut bytemuck::cast_slice_mut::<u32, i16>(&mut words)[..layout.len()];
        packed.iter_mut().zip(layout.values(&weight)).for_each(|(p, v)| *p = v);
        let kernel = QKernel { weight: &weight, bias: &bias, multiplier: &multiplier, shift: &shift, packed: Some(packed) };
        let zps = ZeroPoints { input: zp_in, output: zp_out };
        let mut dsp = vec![0i8; g.out_c * g.out_h() * g.out_w()];
        int8::dsp::conv2d(&input, in_shape, &spec, &kernel, zps, &mut dsp).unwrap();
        let rq = reference::Requant { bias: &bias, multiplier: &multiplier, shift: &shift, zp_in, zp_out };
        prop_assert_eq!(dsp, reference::conv(&input, &weight, &g, &rq));
    }

    #[test]
    fn dsp_instructions_match_their_definitions(a in any::<u32>(), b in any::<u32>(), acc in any::<i32>()) {
        use int8::dsp::{smlad, sxtb16, sxtb16_ror8};
        let lanes = |x: u32| (x as u16 as i16 as i32, (x >> 16) as u16 as i16 as i32);
        prop_assert_eq!(lanes(sxtb16(a)), ((a as u8 as i8) as i32, ((a >> 16) as u8 as i8) as i32));
        prop_assert_eq!(lanes(sxtb16_ror8(a)), (((a >> 8) as u8 as i8) as i32, ((a >> 24) as u8 as i8) as i32));
        let ((a0, a1), (b0, b1)) = (lanes(a), lanes(b));
        prop_assert_eq!(smlad(a, b, acc), (acc as i64 + (a0 * b0) as i64 + (a1 * b1) as i64) as i32);
    }

    #[test]
    fn linear_matches(
        (input, weight, (bias, multiplier, shift), zp_in, zp_out) in (1usize..=300, 1usize..=6).prop_flat_map(|(n, o)| {
            (vec(any::<i8>(), n), vec(-127i8..=127, n * o), requant_params(o), -128i32..=127, -128i32..=127)
        }),
        exact in any::<bool>(),
    ) {
        let (input, weight, bias, multiplier, shift, zp_in) = sensitive(exact, input, weight, bias, multiplier, shift, zp_in);
        let kernel = QKernel { weight: &weight, bias: &bias, multiplier: &multiplier, shift: &shift, packed: None };
        let mut out = vec![0i8; bias.len()];
        int8::linear(&input, &kernel, ZeroPoints { input: zp_in, output: zp_out }, &mut out).unwrap();
        let rq = reference::Requant { bias: &bias, multiplier: &multiplier, shift: &shift, zp_in, zp_out };
        prop_assert_eq!(out, reference::linear(&input, &weight, &rq));
    }

    #[test]
    fn lrn_matches(
        (c, plane, half, q, zp_in, zp_out, input, table) in (1usize..=20, 1usize..=6, 0u32..=7, 0u32..=40, -128i32..=127, -128i32..=127)
            .prop_flat_map(|(c, plane, half, q, zp_in, zp_out)| {
                let n = 2 * half + 1;
                let len = int8::lrn_table_len(int8::lrn_max_sum(n));
                // Realistic factors are below 2^q (at most 1 in real terms), so outputs land
                // inside the int8 range instead of saturating.
                let cap = (1i64 << q).min(i32::MAX as i64) as i32;
                (Just(c), Just(plane), Just(half), Just(q), Just(zp_in), Just(zp_out), vec(any::<i8>(), c * plane), vec(0i32..=cap, len))
            })
    ) {
        let size = 2 * half + 1;
        let spec = LrnSpec { size, alpha: 1e-4, beta: 0.75, k: 2.0, convention: LrnConvention::Paper };
        let mut out = input.clone();
        int8::lrn_in_place(&mut out, Shape::new(c, plane, 1), &spec, &table, q, ZeroPoints { input: zp_in, output: zp_out }).unwrap();
        prop_assert_eq!(out, reference::lrn(&input, c, plane, size as usize, &table, q, zp_in, zp_out));
    }

    #[test]
    fn pools_and_relu_match(
        (c, h, w, win, stride, oh, ow, zp, input) in (1usize..=4, 1usize..=4, 0usize..8, 0usize..8, 1usize..=3)
            .prop_flat_map(|(c, win, dh, dw, stride)| {
                let (h, w) = (win + dh, win + dw);
                (Just(c), Just(h), Just(w), Just(win), Just(stride), 1..=h, 1..=w, -128i32..=127, vec(any::<i8>(), c * h * w))
            })
    ) {
        let (ph, pw) = ((h - win) / stride + 1, (w - win) / stride + 1);
        let mut out = vec![0i8; c * ph * pw];
        int8::max_pool(&input, Shape::new(c, h, w), &PoolSpec { window: win as u32, stride: stride as u32 }, &mut out).unwrap();
        prop_assert_eq!(&out, &reference::max_pool(&input, c, h, w, win, stride));
        let mut avg = vec![0i8; c * oh * ow];
        int8::adaptive_avg_pool(&input, Shape::new(c, h, w), oh as u32, ow as u32, &mut avg).unwrap();
        prop_assert_eq!(&avg, &reference::adaptive_avg_pool(&input, c, h, w, oh, ow));
        let mut r = input.clone();
        int8::relu_in_place(&mut r, zp);
        prop_assert_eq!(r, reference::relu(&input, zp));
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
