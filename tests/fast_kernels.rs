//! The fast kernels (`alexnet_core::fast`) against the definitions, bit for bit: the f32
//! convolution against `layers::conv2d_reference` (non-finite values, signed zeros and
//! subnormals included), the int8 convolution against `int8::conv2d_generic` and the
//! independent reference. Shapes are random and larger than the kernels' blocks (output
//! channels past the register tile, pixels past a panel, taps past a panel's depth), with
//! groups, strides and padding; plus the paper net's convolutions at full size and the
//! kernels' fallbacks.
//!
//! On an x86-64 machine with AVX2 the fast path must be the one taken (checked against
//! `std`'s own detection); elsewhere these tests compare the definitions with themselves.

use alexnet_core::arch::{ConvSpec, Shape};
use alexnet_core::builtin::PAPER;
use alexnet_core::int8::{self, QKernel, ZeroPoints};
use alexnet_core::{fast, layers, Layer};
use alexnet_tests::int8 as reference;
use alexnet_tests::ConvGeom;
use proptest::collection::vec;
use proptest::prelude::*;

/// Whether this machine should run the fast kernels, by `std`'s detection.
fn expected_fast() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[test]
fn fast_path_is_taken_where_available() {
    let fast = fast::available();
    println!(
        "fast kernels available: {fast} (target {}, AVX2 by std: {})",
        std::env::consts::ARCH,
        expected_fast()
    );
    assert_eq!(fast, expected_fast());
    // The development and CI machines are x86-64 with AVX2: there the fast path must run.
    if cfg!(target_arch = "x86_64") {
        assert!(
            fast,
            "no AVX2: the fast kernels are not tested on this machine"
        );
    }
}

/// f32 bits, every NaN as one: Rust (like LLVM) does not specify which NaN an operation on
/// NaNs returns, so payloads and the sign of a NaN are not part of the contract; NaN-ness,
/// infinities, signed zeros and every finite bit are.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter()
        .map(|x| if x.is_nan() { 0x7fc0_0000 } else { x.to_bits() })
        .collect()
}

fn spec(g: &ConvGeom) -> ConvSpec {
    ConvSpec {
        out_channels: g.out_c as u32,
        kernel: g.k as u32,
        stride: g.stride as u32,
        padding: g.pad as u32,
        groups: g.groups as u32,
    }
}

fn macs(g: &ConvGeom) -> usize {
    g.out_c * g.out_h() * g.out_w() * (g.c / g.groups) * g.k * g.k
}

/// Geometries around the kernels' blocks: up to 20 output channels per group (the f32 tile
/// has 5, the int8 tile 2), output planes up to 24 x 24 (panels of 16 and 32 pixels), up to
/// 20 x 7 x 7 = 980 taps (f32 panels of at most 512, int8 of 256), strides up to 4.
fn geometry() -> impl Strategy<Value = ConvGeom> {
    alexnet_tests::conv_geometry_up_to(20, 7, 24)
        .prop_filter("at most 3 M MACs per case", |g| macs(g) <= 3_000_000)
}

/// An f32 value: mostly ordinary, sometimes special (`specials`).
fn value(specials: bool) -> BoxedStrategy<f32> {
    if specials {
        prop_oneof![
            12 => -2.0f32..2.0,
            1 => Just(f32::NAN),
            1 => Just(f32::INFINITY),
            1 => Just(f32::NEG_INFINITY),
            2 => Just(-0.0f32),
            2 => Just(0.0f32),
            1 => Just(1e-40f32),
            1 => Just(-3e-39f32),
            1 => Just(f32::MAX),
            1 => Just(f32::MIN_POSITIVE),
        ]
        .boxed()
    } else {
        (-2.0f32..2.0).boxed()
    }
}

type F32Case = (ConvGeom, Vec<f32>, Vec<f32>, Vec<f32>);

fn f32_case() -> impl Strategy<Value = F32Case> {
    (geometry(), any::<bool>(), any::<bool>()).prop_flat_map(|(g, special_in, special_w)| {
        let n_w = g.out_c * g.c / g.groups * g.k * g.k;
        (
            Just(g),
            vec(value(special_in), g.c * g.h * g.w),
            vec(value(special_w), n_w),
            vec(value(special_in || special_w), g.out_c),
        )
    })
}

/// An f32 convolution's signature.
type ConvF32 =
    fn(&[f32], Shape, &ConvSpec, &[f32], &[f32], &mut [f32]) -> Result<Shape, alexnet_core::Error>;

/// The fast f32 convolution and `layers::conv2d` against the definition.
fn check_f32(g: &ConvGeom, input: &[f32], weight: &[f32], bias: &[f32]) -> Result<(), String> {
    let (shape, spec) = (Shape::new(g.c, g.h, g.w), spec(g));
    let n = g.out_c * g.out_h() * g.out_w();
    let mut want = vec![f32::NAN; n];
    let s = layers::conv2d_reference(input, shape, &spec, weight, bias, &mut want).unwrap();
    assert_eq!(s, Shape::new(g.out_c, g.out_h(), g.out_w()));
    for (what, run) in [
        ("fast::conv2d_f32", fast::conv2d_f32 as ConvF32),
        ("layers::conv2d", layers::conv2d),
    ] {
        let mut got = vec![1.5f32; n];
        assert_eq!(run(input, shape, &spec, weight, bias, &mut got), Ok(s));
        let (got, want) = (bits(&got), bits(&want));
        if let Some(i) = (0..n).find(|&i| got[i] != want[i]) {
            return Err(format!(
                "{what}, {g:?}: output {i} is {:#x}, the definition's {:#x}",
                got[i], want[i]
            ));
        }
    }
    Ok(())
}

/// Per-channel bias, multiplier and shift.
type Requant = (Vec<i32>, Vec<i32>, Vec<i32>);
type Int8Case = (ConvGeom, Vec<i8>, Vec<i8>, Requant, i32, i32);

fn int8_case() -> impl Strategy<Value = Int8Case> {
    geometry().prop_flat_map(|g| {
        let n = g.out_c;
        (
            Just(g),
            vec(any::<i8>(), g.c * g.h * g.w),
            vec(-127i8..=127, g.out_c * g.c / g.groups * g.k * g.k),
            (
                vec(-(1i32 << 20)..(1 << 20), n),
                vec((1i32 << 30)..=i32::MAX, n),
                // Shifts that keep the accumulator's low bits visible in the codes, and any.
                vec(prop_oneof![3 => 14i32..=24, 1 => 1i32..=62], n),
            ),
            -128i32..=127,
            -128i32..=127,
        )
    })
}

/// The fast int8 convolution and `int8::conv2d` against the definition and the reference.
fn check_int8(g: &ConvGeom, input: &[i8], weight: &[i8], rq: &Requant, zps: ZeroPoints) {
    let (shape, spec) = (Shape::new(g.c, g.h, g.w), spec(g));
    let (bias, multiplier, shift) = rq;
    let kernel = QKernel {
        weight,
        bias,
        multiplier,
        shift,
        packed: None,
    };
    let n = g.out_c * g.out_h() * g.out_w();
    let mut generic = vec![0i8; n];
    int8::conv2d_generic(input, shape, &spec, &kernel, zps, &mut generic).unwrap();
    let mut fast = vec![99i8; n];
    fast::conv2d_int8(input, shape, &spec, &kernel, zps, &mut fast).unwrap();
    assert_eq!(fast, generic, "fast::conv2d_int8, {g:?}");
    let mut public = vec![99i8; n];
    int8::conv2d(input, shape, &spec, &kernel, zps, &mut public).unwrap();
    assert_eq!(public, generic, "int8::conv2d, {g:?}");
    let rq = reference::Requant {
        bias,
        multiplier,
        shift,
        zp_in: zps.input,
        zp_out: zps.output,
    };
    assert_eq!(
        fast,
        reference::conv(input, weight, g, &rq),
        "reference, {g:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn fast_f32_conv_matches_reference_bits((g, input, weight, bias) in f32_case()) {
        check_f32(&g, &input, &weight, &bias).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn fast_int8_conv_matches_generic((g, input, weight, rq, zp_in, zp_out) in int8_case()) {
        check_int8(&g, &input, &weight, &rq, ZeroPoints { input: zp_in, output: zp_out });
    }
}

/// A deterministic generator of test data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn f32(&mut self) -> f32 {
        self.next() as f32 / (1u64 << 31) as f32 - 0.5
    }
    fn i8(&mut self) -> i8 {
        self.next() as u8 as i8
    }
}

fn geom_of(input: Shape, spec: &ConvSpec) -> ConvGeom {
    ConvGeom {
        c: input.c,
        h: input.h,
        w: input.w,
        out_c: spec.out_channels as usize,
        k: spec.kernel as usize,
        stride: spec.stride as usize,
        pad: spec.padding as usize,
        groups: spec.groups as usize,
    }
}

/// The paper net's five convolutions at full size (stride 4 and 11 x 11 kernels, groups,
/// 384 output channels per group, 2304 taps), f32 and int8.
#[test]
fn paper_convolutions_match_at_full_size() {
    let mut rng = Lcg(7);
    for step in PAPER.walk().map(|s| s.unwrap()) {
        let Layer::Conv(cs) = step.layer else {
            continue;
        };
        let g = geom_of(step.input, &cs);
        let n_w = step.layer.weight_len(step.input).unwrap();
        let input: Vec<f32> = (0..step.input.len()).map(|_| rng.f32()).collect();
        let weight: Vec<f32> = (0..n_w).map(|_| rng.f32() * 0.05).collect();
        let bias: Vec<f32> = (0..g.out_c).map(|_| rng.f32()).collect();
        check_f32(&g, &input, &weight, &bias).unwrap();

        let input: Vec<i8> = (0..step.input.len()).map(|_| rng.i8()).collect();
        let weight: Vec<i8> = (0..n_w).map(|_| rng.i8().max(-127)).collect();
        let rq = (
            (0..g.out_c).map(|_| rng.next() as i32 >> 12).collect(),
            vec![(1 << 30) + 12345; g.out_c],
            vec![24; g.out_c],
        );
        check_int8(
            &g,
            &input,
            &weight,
            &rq,
            ZeroPoints {
                input: -7,
                output: 3,
            },
        );
    }
}

/// Padding is materialized: a padded tap adds `0.0 * w`, so an infinite or NaN weight on a
/// padded tap makes the output NaN, and `-0.0 * w` signs decide zero outputs.
#[test]
fn padding_products_are_materialized() {
    // 1 x 1 input, 3 x 3 kernel, padding 1: eight of the nine taps are padding.
    let g = ConvGeom {
        c: 1,
        h: 1,
        w: 1,
        out_c: 20,
        k: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    };
    let mut weight = vec![1.0f32; 20 * 9];
    let mut bias = vec![-0.0f32; 20];
    // Channel 0: infinite weight on a padded tap; 1: NaN there; 2: -1 everywhere (padded
    // products -0.0, so -0.0 + -0.0 stays -0.0 with a zero input); 3: infinite weight on the
    // real tap (input 0: NaN); 4: bias +0.0 and negative weights.
    weight[0] = f32::INFINITY;
    weight[9 + 8] = f32::NAN;
    weight[18..27].fill(-1.0);
    weight[27 + 4] = f32::NEG_INFINITY;
    weight[36..45].fill(-2.0);
    bias[4] = 0.0;
    for input in [0.0f32, -0.0, 1.0] {
        check_f32(&g, &[input], &weight, &bias).unwrap();
    }
    let run = |input: f32| {
        let mut out = vec![0.0f32; 20];
        let shape = Shape::new(1, 1, 1);
        fast::conv2d_f32(&[input], shape, &spec(&g), &weight, &bias, &mut out).unwrap();
        out
    };
    let out = run(0.0);
    assert!(out[0].is_nan() && out[1].is_nan() && out[3].is_nan());
    assert_eq!(out[2].to_bits(), (-0.0f32).to_bits());
    assert_eq!(out[4].to_bits(), 0.0f32.to_bits());
    // Channel 5: bias -0.0, weights 1, input -0.0. Skipping the padding would give
    // -0.0 + -0.0 * 1 = -0.0; the padded taps' +0.0 * 1 make it +0.0.
    assert_eq!(run(-0.0)[5].to_bits(), 0.0f32.to_bits());
}

/// Geometries past the vector packers' i32 lanes (a row of 2^14 + 3 values) take the scalar
/// packers; an input zero point outside the int8 range takes the generic int8 kernel.
#[test]
fn fallbacks_match() {
    let mut rng = Lcg(11);
    for (k, stride, pad) in [(1, 1, 0), (3, 2, 1), (5, 3, 4)] {
        let g = ConvGeom {
            c: 2,
            h: 2,
            w: (1 << 14) + 3,
            out_c: 7,
            k,
            stride,
            pad,
            groups: 1,
        };
        let n_w = g.out_c * g.c * k * k;
        let input: Vec<f32> = (0..g.c * g.h * g.w).map(|_| rng.f32()).collect();
        let weight: Vec<f32> = (0..n_w).map(|_| rng.f32()).collect();
        let bias: Vec<f32> = (0..g.out_c).map(|_| rng.f32()).collect();
        check_f32(&g, &input, &weight, &bias).unwrap();
        let input: Vec<i8> = input.iter().map(|_| rng.i8()).collect();
        let weight: Vec<i8> = weight.iter().map(|_| rng.i8().max(-127)).collect();
        let rq = (vec![5; g.out_c], vec![1 << 30; g.out_c], vec![20; g.out_c]);
        check_int8(
            &g,
            &input,
            &weight,
            &rq,
            ZeroPoints {
                input: 9,
                output: -1,
            },
        );
    }
    // An input zero point no blob has: the generic kernel, with its i32 arithmetic.
    let g = ConvGeom {
        c: 3,
        h: 9,
        w: 9,
        out_c: 5,
        k: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    };
    let input: Vec<i8> = (0..g.c * g.h * g.w).map(|_| rng.i8()).collect();
    let weight: Vec<i8> = (0..g.out_c * 27).map(|_| rng.i8().max(-127)).collect();
    let rq = (vec![0; 5], vec![1 << 30; 5], vec![30; 5]);
    let (shape, spec) = (Shape::new(3, 9, 9), spec(&g));
    let kernel = QKernel {
        weight: &weight,
        bias: &rq.0,
        multiplier: &rq.1,
        shift: &rq.2,
        packed: None,
    };
    let zps = ZeroPoints {
        input: 300,
        output: 0,
    };
    let (mut a, mut b) = (vec![0i8; 5 * 81], vec![1i8; 5 * 81]);
    int8::conv2d_generic(&input, shape, &spec, &kernel, zps, &mut a).unwrap();
    fast::conv2d_int8(&input, shape, &spec, &kernel, zps, &mut b).unwrap();
    assert_eq!(a, b);
}

/// Wrong slices are the same errors as the definitions'.
#[test]
fn errors_match_the_definitions() {
    let spec = ConvSpec {
        out_channels: 2,
        kernel: 3,
        stride: 1,
        padding: 0,
        groups: 1,
    };
    let shape = Shape::new(1, 4, 4);
    let (input, weight, bias) = (vec![0.0f32; 16], vec![0.0f32; 18], vec![0.0f32; 2]);
    for (i, w, b, o) in [
        (15, 18, 2, 8),
        (16, 17, 2, 8),
        (16, 18, 1, 8),
        (16, 18, 2, 9),
    ] {
        let mut out = vec![0.0f32; o];
        let got = fast::conv2d_f32(
            &input[..i.min(16)],
            shape,
            &spec,
            &weight[..w],
            &bias[..b],
            &mut out,
        );
        let mut out2 = vec![0.0f32; o];
        let want = layers::conv2d_reference(
            &input[..i.min(16)],
            shape,
            &spec,
            &weight[..w],
            &bias[..b],
            &mut out2,
        );
        assert!(want.is_err());
        assert_eq!(got, want);
    }
    let bad = ConvSpec { kernel: 5, ..spec };
    let mut out = vec![0.0f32; 8];
    assert_eq!(
        fast::conv2d_f32(&input, shape, &bad, &weight, &bias, &mut out),
        layers::conv2d_reference(&input, shape, &bad, &weight, &bias, &mut out.clone())
    );
    let codes = vec![0i8; 16];
    let w8 = vec![0i8; 18];
    let ones = vec![1i32; 2];
    let kernel = QKernel {
        weight: &w8,
        bias: &ones,
        multiplier: &ones,
        shift: &ones,
        packed: None,
    };
    let zps = ZeroPoints {
        input: 0,
        output: 0,
    };
    let mut q = vec![0i8; 7];
    assert_eq!(
        fast::conv2d_int8(&codes, shape, &spec, &kernel, zps, &mut q),
        int8::conv2d_generic(&codes, shape, &spec, &kernel, zps, &mut q.clone())
    );
    assert!(fast::conv2d_int8(&codes, shape, &spec, &kernel, zps, &mut q).is_err());
}
