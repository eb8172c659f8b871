//! One kernel test suite, written once and run by every implementation of
//! `alexnet_core::Kernels`: the reference definitions, the x86-64 AVX2 kernels, the two
//! Cortex-M kernel sets (their instructions emulated exactly on the host, their assembly
//! replaced by the same loops in Rust; the QEMU firmware tests run the real ones) and the
//! host's `Parallel` wrapper.
//!
//! Every layer kind in both precisions is checked against the independent references of
//! `tests/reference` (written from the documents, not from the core): f32 bit for bit
//! against the documented accumulation order and within the textbook bound of the exact
//! result, int8 bit for bit. Shapes are random and larger than the kernels' blocks, with
//! groups, strides, padding and odd sizes; f32 inputs include NaN, infinities, -0.0 and
//! subnormals; int8 cases cover every zero point and the whole shift range. Every call also
//! returns the code path that ran, and the suite checks it is the implementation's own: a
//! kernel that quietly falls back to another fails here.

use alexnet_core::arch::{ConvSpec, LrnConvention, LrnSpec, PoolSpec, Shape};
use alexnet_core::builtin::PAPER;
use alexnet_core::geometry::{AdaptivePoolGeometry, ConvGeometry, PoolGeometry};
use alexnet_core::int8::packed::{packed_fits, PackedGeometry};
use alexnet_core::int8::{self, QKernel, ZeroPoints};
use alexnet_core::kernels::blocked::MAX_POOL_ROW;
use alexnet_core::kernels::cortex_m::fpu::MAX_F32_PATCH;
use alexnet_core::kernels::{KernelPath, Kernels, LrnTable, Reference};
use alexnet_core::{Error, Layer};
use alexnet_tests::f64::gamma;
use alexnet_tests::int8 as int8_reference;
use alexnet_tests::{contract, f64 as exact, ConvGeom, U32};
use proptest::collection::vec;
use proptest::prelude::*;

/// Which kind of call a case makes, for the path an implementation must report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Conv {
        taps: usize,
    },
    Linear,
    /// `packed`: the call had the host's prepacked weights.
    ConvInt8 {
        taps: usize,
        packed: bool,
    },
    LinearInt8 {
        inputs: usize,
    },
    Lrn,
    LrnInt8,
    MaxPoolInt8 {
        in_w: usize,
    },
    /// f32 max pooling.
    MaxPool {
        stride: usize,
    },
    Relu,
    ReluInt8,
    Other,
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

fn geometry_of(g: &ConvGeom) -> ConvGeometry {
    ConvGeometry::new(&spec(g), Shape::new(g.c, g.h, g.w)).expect("a valid generated geometry")
}

fn macs(g: &ConvGeom) -> usize {
    g.out_c * g.out_h() * g.out_w() * (g.c / g.groups) * g.k * g.k
}

/// Geometries around the kernels' blocks: up to 20 output channels per group (the AVX2 f32
/// tile has 5, the int8 tile 2, the DSP kernel pairs channels), output planes up to 24 x 24
/// (AVX2 panels of 16 and 32 pixels), up to 20 x 7 x 7 = 980 taps (AVX2 f32 tap blocks of
/// at most 512, int8 of 256), strides up to 4; at most 3 M MACs per case.
fn geometry() -> impl Strategy<Value = ConvGeom> {
    // Under Miri (which interprets about a million operations a second) small geometries:
    // it looks for undefined behaviour, which needs the code paths, not the sizes.
    let (channels, kernel, extra, most) = if cfg!(miri) {
        (3, 5, 9, 20_000)
    } else {
        (20, 7, 24, 3_000_000)
    };
    alexnet_tests::conv_geometry_up_to(channels, kernel, extra)
        .prop_filter("a bounded number of MACs per case", move |g| {
            macs(g) <= most
        })
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

/// Geometry, input, weight, bias, and whether any special value is in them.
type F32Conv = (ConvGeom, Vec<f32>, Vec<f32>, Vec<f32>, bool);

fn f32_conv_case() -> impl Strategy<Value = F32Conv> {
    (geometry(), any::<bool>(), any::<bool>()).prop_flat_map(|(g, special_in, special_w)| {
        let n_w = g.out_c * g.c / g.groups * g.k * g.k;
        (
            Just(g),
            vec(value(special_in), g.c * g.h * g.w),
            vec(value(special_w), n_w),
            vec(value(special_in || special_w), g.out_c),
            Just(special_in || special_w),
        )
    })
}

/// Per-channel bias, multiplier and shift (every shift of the contract's [1, 62]).
type Requant = (Vec<i32>, Vec<i32>, Vec<i32>);

fn requant(n: usize) -> impl Strategy<Value = Requant> {
    (
        vec(-(1i32 << 20)..(1 << 20), n),
        vec((1i32 << 30)..=i32::MAX, n),
        vec(
            prop_oneof![3 => 12i32..=30, 1 => 1i32..=62, 1 => 33i32..=62],
            n,
        ),
    )
}

/// Geometry, codes, weights, requantization, input and output zero points (every int8 code),
/// and the "exact" regime (see [`sensitive`]).
type Int8Conv = (ConvGeom, Vec<i8>, Vec<i8>, Requant, i32, i32, bool);

fn int8_conv_case() -> impl Strategy<Value = Int8Conv> {
    (geometry(), any::<bool>()).prop_flat_map(|(g, exact)| {
        (
            Just(g),
            vec(any::<i8>(), g.c * g.h * g.w),
            vec(-127i8..=127, g.out_c * g.c / g.groups * g.k * g.k),
            requant(g.out_c),
            -128i32..=127,
            -128i32..=127,
            Just(exact),
        )
    })
}

/// In the "exact" regime every unit of the accumulator shows in the output: tiny weights and
/// inputs, multiplier 1 (`m = 2^30`, `r = 30`), small biases. Without it, requantization
/// hides off-by-one accumulation errors.
fn sensitive(case: Int8Conv) -> Int8Conv {
    let (g, input, weight, (bias, multiplier, shift), zp_in, zp_out, exact) = case;
    if !exact {
        return (
            g,
            input,
            weight,
            (bias, multiplier, shift),
            zp_in,
            zp_out,
            exact,
        );
    }
    (
        g,
        input.iter().map(|&x| x % 3).collect(),
        weight.iter().map(|&w| w % 2).collect(),
        (
            bias.iter().map(|&b| b % 20).collect(),
            vec![1 << 30; multiplier.len()],
            vec![30; shift.len()],
        ),
        0,
        zp_out,
        exact,
    )
}

/// The host's prepacked DSP weights for a convolution, word-aligned as in a blob, if the
/// layout holds it.
fn packed_weights(g: &ConvGeom, weight: &[i8]) -> Option<Vec<u32>> {
    let (spec, shape) = (spec(g), Shape::new(g.c, g.h, g.w));
    if !packed_fits(&spec, shape) {
        return None;
    }
    let layout = PackedGeometry::new(&spec, shape)?;
    let mut words = vec![0u32; layout.len().div_ceil(2)];
    let packed: &mut [i16] = &mut bytemuck::cast_slice_mut::<u32, i16>(&mut words)[..layout.len()];
    packed
        .iter_mut()
        .zip(layout.values(weight))
        .for_each(|(p, v)| *p = v);
    Some(words)
}

fn int8_conv_check<K: Kernels>(
    kernels: &K,
    expect: &dyn Fn(Op) -> KernelPath,
    case: Int8Conv,
    with_packed: bool,
) -> Result<(), TestCaseError> {
    let (g, input, weight, (bias, multiplier, shift), zp_in, zp_out, _) = sensitive(case);
    let words = if with_packed {
        packed_weights(&g, &weight)
    } else {
        None
    };
    let packed = words.as_ref().map(|w| bytemuck::cast_slice::<u32, i16>(w));
    let packed = packed.and_then(|p| {
        let len = PackedGeometry::new(&spec(&g), Shape::new(g.c, g.h, g.w))?.len();
        p.get(..len)
    });
    let kernel = QKernel {
        weight: &weight,
        bias: &bias,
        multiplier: &multiplier,
        shift: &shift,
        packed,
    };
    let zps = ZeroPoints {
        input: zp_in,
        output: zp_out,
    };
    let mut out = vec![99i8; g.out_c * g.out_h() * g.out_w()];
    let path = kernels
        .conv2d_int8(&geometry_of(&g), &input, &kernel, zps, &mut out)
        .unwrap();
    let taps = g.c / g.groups * g.k * g.k;
    let packed = kernel.packed.is_some();
    prop_assert_eq!(path, expect(Op::ConvInt8 { taps, packed }), "{:?}", g);
    let rq = int8_reference::Requant {
        bias: &bias,
        multiplier: &multiplier,
        shift: &shift,
        zp_in,
        zp_out,
    };
    prop_assert_eq!(
        out,
        int8_reference::conv(&input, &weight, &g, &rq),
        "{:?}",
        g
    );
    Ok(())
}

/// A convolution whose channels-last padded input (6 x 44 x 45 values) exceeds the packed
/// Cortex-M kernel's copy buffer (`int8::packed::MAX_PADDED_INPUT`): stride 2, padding 2, an
/// odd output width and an odd channel count, deterministic values.
fn large_int8_conv(exact: bool) -> Int8Conv {
    let g = ConvGeom {
        c: 6,
        h: 40,
        w: 41,
        out_c: 5,
        k: 5,
        stride: 2,
        pad: 2,
        groups: 1,
    };
    assert!(
        !alexnet_core::int8::packed::padded_input_fits(&spec(&g), Shape::new(g.c, g.h, g.w)),
        "the case must exceed the copy buffer"
    );
    deterministic_int8_conv(g, exact)
}

/// A convolution whose padded input (4 x 42 x 43 values) fits the packed Cortex-M kernel's
/// large copy buffer but not its small one (4096 values, `cortex_m::packed_conv`), so that
/// the kernel's large-buffer variant runs.
fn medium_int8_conv(exact: bool) -> Int8Conv {
    let g = ConvGeom {
        c: 4,
        h: 38,
        w: 39,
        out_c: 5,
        k: 5,
        stride: 1,
        pad: 2,
        groups: 1,
    };
    let padded = g.c * (g.h + 2 * g.pad) * (g.w + 2 * g.pad);
    assert!(
        padded > 4096
            && alexnet_core::int8::packed::padded_input_fits(&spec(&g), Shape::new(g.c, g.h, g.w)),
        "the case must fit the large copy buffer only"
    );
    deterministic_int8_conv(g, exact)
}

/// A convolution with more output channels than the AVX2 int8 kernel keeps sums for at once
/// (384), an odd count (the last tile of one channel) and an odd number of taps (45: a
/// last tap without a partner, and a weight row longer than one 16-byte widening step).
fn many_channels_int8_conv(exact: bool) -> Int8Conv {
    let g = ConvGeom {
        c: 5,
        h: 7,
        w: 6,
        out_c: 389,
        k: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    };
    deterministic_int8_conv(g, exact)
}

/// Deterministic values for a convolution of geometry `g`.
fn deterministic_int8_conv(g: ConvGeom, exact: bool) -> Int8Conv {
    let mut r = Lcg(7);
    let input = (0..g.c * g.h * g.w).map(|_| r.next() as i8).collect();
    let weight = (0..g.out_c * g.c * g.k * g.k)
        .map(|_| (r.next() % 255) as i8)
        .map(|w| w.max(-127))
        .collect();
    let bias = (0..g.out_c)
        .map(|_| (r.next() % (1 << 20)) as i32 - (1 << 19))
        .collect();
    let multiplier = (0..g.out_c)
        .map(|_| (1 << 30) + (r.next() >> 2) as i32)
        .collect();
    let shift = (0..g.out_c).map(|i| [20, 33, 40, 12, 62][i % 5]).collect();
    sensitive((g, input, weight, (bias, multiplier, shift), -3, 5, exact))
}

/// A deterministic generator for the full-size cases.
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
        (self.next() as f32 / u32::MAX as f32) * 2.0 - 1.0
    }
    fn i8(&mut self) -> i8 {
        self.next() as i8
    }
}

/// The paper net's five convolutions at full size, f32 and int8, against the reference
/// kernels (the independent references are too slow at this size to run per kernel).
fn paper_convolutions_at_full_size<K: Kernels>(kernels: &K, expect: impl Fn(Op) -> KernelPath) {
    let mut rng = Lcg(7);
    for step in PAPER.walk().map(|s| s.unwrap()) {
        let Layer::Conv(cs) = step.layer else {
            continue;
        };
        let g = ConvGeometry::new(&cs, step.input).unwrap();
        let n_w = g.weight_len();
        let c = g.output().c;
        let input: Vec<f32> = (0..step.input.len()).map(|_| rng.f32()).collect();
        let weight: Vec<f32> = (0..n_w).map(|_| rng.f32() * 0.05).collect();
        let bias: Vec<f32> = (0..c).map(|_| rng.f32()).collect();
        let mut want = vec![0.0f32; g.output().len()];
        Reference
            .conv2d(&g, &input, &weight, &bias, &mut want)
            .unwrap();
        let mut got = vec![f32::NAN; want.len()];
        let path = kernels
            .conv2d(&g, &input, &weight, &bias, &mut got)
            .unwrap();
        assert_eq!(
            path,
            expect(Op::Conv {
                taps: g.taps().get()
            }),
            "{cs:?}"
        );
        assert_eq!(bits(&got), bits(&want), "f32 {cs:?}");

        let input: Vec<i8> = (0..step.input.len()).map(|_| rng.i8()).collect();
        let weight: Vec<i8> = (0..n_w).map(|_| rng.i8().max(-127)).collect();
        let bias: Vec<i32> = (0..c).map(|_| rng.next() as i32 >> 12).collect();
        let (multiplier, shift) = (vec![(1 << 30) + 12345; c], vec![24; c]);
        let kernel = QKernel {
            weight: &weight,
            bias: &bias,
            multiplier: &multiplier,
            shift: &shift,
            packed: None,
        };
        let zps = ZeroPoints {
            input: -7,
            output: 3,
        };
        let mut want = vec![0i8; g.output().len()];
        Reference
            .conv2d_int8(&g, &input, &kernel, zps, &mut want)
            .unwrap();
        let mut got = vec![99i8; want.len()];
        let path = kernels
            .conv2d_int8(&g, &input, &kernel, zps, &mut got)
            .unwrap();
        assert_eq!(
            path,
            expect(Op::ConvInt8 {
                taps: g.taps().get(),
                packed: false,
            }),
            "{cs:?}"
        );
        assert_eq!(got, want, "int8 {cs:?}");
    }
}

/// Wrong slice lengths give the reference's errors, and write nothing that matters.
fn errors_match_the_reference<K: Kernels>(kernels: &K) {
    let g = ConvGeometry::new(
        &ConvSpec {
            out_channels: 4,
            kernel: 3,
            stride: 1,
            padding: 1,
            groups: 2,
        },
        Shape::new(2, 5, 5),
    )
    .unwrap();
    let (input, weight, bias) = (vec![0.5f32; 50], vec![0.5f32; 4 * 9], vec![0.0f32; 4]);
    let mut out = vec![0.0f32; 100];
    for (i, w, b, o) in [
        (49, 36, 4, 100),
        (50, 35, 4, 100),
        (50, 36, 3, 100),
        (50, 36, 4, 99),
    ] {
        let want = Reference.conv2d(&g, &input[..i], &weight[..w], &bias[..b], &mut out[..o]);
        let got = kernels.conv2d(&g, &input[..i], &weight[..w], &bias[..b], &mut out[..o]);
        assert!(want.is_err());
        assert_eq!(got.err(), want.err());
    }
    let (codes, qweight, q32) = (vec![0i8; 50], vec![1i8; 36], vec![1i32 << 30; 4]);
    let shift = [20i32; 4];
    let mut qout = vec![0i8; 100];
    let zps = ZeroPoints {
        input: 0,
        output: 0,
    };
    for (bias_len, shift_len) in [(3, 4), (4, 3)] {
        let kernel = QKernel {
            weight: &qweight,
            bias: &q32[..bias_len],
            multiplier: &q32,
            shift: &shift[..shift_len],
            packed: None,
        };
        let want = Reference.conv2d_int8(&g, &codes, &kernel, zps, &mut qout);
        let got = kernels.conv2d_int8(&g, &codes, &kernel, zps, &mut qout);
        assert!(want.is_err());
        assert_eq!(got.err(), want.err());
    }
    let mut short = vec![0.0f32; 3];
    assert!(matches!(
        kernels.linear(&[1.0; 4], &[1.0; 8], &[0.0; 2], &mut short),
        Err(Error::WrongLength { .. })
    ));
}

/// Padding is materialized: a padded tap adds `0.0 * w`, so an infinite or NaN weight on a
/// padded tap makes the output NaN, and `-0.0 * w` signs decide zero outputs.
fn padding_products_are_materialized<K: Kernels>(kernels: &K) {
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
    let run = |input: f32| {
        let mut out = vec![0.0f32; 20];
        kernels
            .conv2d(&geometry_of(&g), &[input], &weight, &bias, &mut out)
            .unwrap();
        assert_eq!(
            bits(&out),
            bits(&contract::conv(&[input], &weight, &bias, &g))
        );
        out
    };
    let out = run(0.0);
    assert!(out[0].is_nan() && out[1].is_nan() && out[3].is_nan());
    assert_eq!(out[2].to_bits(), (-0.0f32).to_bits());
    assert_eq!(out[4].to_bits(), 0.0f32.to_bits());
    // Channel 5: bias -0.0, weights 1, input -0.0. Skipping the padding would give
    // -0.0 + -0.0 * 1 = -0.0; the padded taps' +0.0 * 1 make it +0.0.
    assert_eq!(run(-0.0)[5].to_bits(), 0.0f32.to_bits());
    run(1.0);
}

/// int8 max pools on rows as wide as the AVX-512 pool's register (64 codes), the paper
/// net's 55, the Cortex-M pool's row buffer, and wider: the same codes, and the path each
/// implementation says it takes there.
fn wide_int8_pools_match<K: Kernels>(kernels: &K, expect: impl Fn(Op) -> KernelPath) {
    let mut rng = Lcg(13);
    #[cfg(target_arch = "x86_64")]
    let register = alexnet_core::kernels::x86_64::MAX_AVX512_POOL_INT8_ROW;
    #[cfg(not(target_arch = "x86_64"))]
    let register = 64;
    for w in [
        55,
        register - 1,
        register,
        register + 1,
        MAX_POOL_ROW,
        MAX_POOL_ROW + 9,
    ] {
        for (win, stride) in [(3u32, 2u32), (2, 1)] {
            let (c, h) = (2, 5);
            let input: Vec<i8> = (0..c * h * w).map(|_| rng.i8()).collect();
            let spec = PoolSpec {
                window: win,
                stride,
            };
            let g = PoolGeometry::new(&spec, Shape::new(c, h, w)).unwrap();
            let mut out = vec![0i8; g.output().len()];
            let path = kernels.max_pool_int8(&g, &input, &mut out).unwrap();
            assert_eq!(path, expect(Op::MaxPoolInt8 { in_w: w }), "width {w}");
            let want = int8_reference::max_pool(&input, c, h, w, win as usize, stride as usize);
            assert_eq!(out, want, "width {w}, window {win}, stride {stride}");
        }
    }
}

/// int8 fully connected layers with inputs as long as fc6's and longer than any kernel's
/// input buffer (the DSP kernel's, the x86-64 kernel's): the same codes, and the path each
/// implementation says it takes there.
fn long_int8_linear_matches<K: Kernels>(kernels: &K, expect: impl Fn(Op) -> KernelPath) {
    use alexnet_core::kernels::cortex_m::dsp::MAX_LINEAR_INPUT;
    let mut rng = Lcg(17);
    let longest = MAX_LINEAR_INPUT.max(alexnet_core::kernels::x86_64::MAX_LINEAR_INT8_INPUT);
    for n in [9216, MAX_LINEAR_INPUT + 5, longest + 37] {
        let outputs = 5;
        let input: Vec<i8> = (0..n).map(|_| rng.i8()).collect();
        // Weights of one sign and extreme codes, so that the sums come near what i32 holds.
        let weight: Vec<i8> = (0..n * outputs)
            .map(|i| if i % 7 == 0 { 127 } else { rng.i8().max(-127) })
            .collect();
        let bias = vec![-5000, 0, 77, 1 << 20, -(1 << 20)];
        let multiplier = vec![
            1 << 30,
            i32::MAX,
            1_500_000_000,
            1 << 30,
            (1 << 30) + 12_345,
        ];
        let shift = vec![24, 30, 20, 12, 62];
        let kernel = QKernel {
            weight: &weight,
            bias: &bias,
            multiplier: &multiplier,
            shift: &shift,
            packed: None,
        };
        for (zp_in, zp_out) in [(-128, -128), (127, 3)] {
            let zps = ZeroPoints {
                input: zp_in,
                output: zp_out,
            };
            let mut out = vec![0i8; outputs];
            let path = kernels.linear_int8(&input, &kernel, zps, &mut out).unwrap();
            assert_eq!(path, expect(Op::LinearInt8 { inputs: n }), "{n} inputs");
            let rq = int8_reference::Requant {
                bias: &bias,
                multiplier: &multiplier,
                shift: &shift,
                zp_in,
                zp_out,
            };
            assert_eq!(
                out,
                int8_reference::linear(&input, &weight, &rq),
                "{n} inputs"
            );
        }
    }
}

/// One int8 convolution against the definition: every channel's bias `bias`, multiplier
/// 2^30 and shift `shift`, zero points `(input, output)`.
fn int8_conv_matches<K: Kernels>(
    kernels: &K,
    g: &ConvGeom,
    codes: &[i8],
    weight: &[i8],
    bias: i32,
    shift: i32,
    (zp_in, zp_out): (i32, i32),
) {
    let (bias, m, r) = (
        vec![bias; g.out_c],
        vec![1 << 30; g.out_c],
        vec![shift; g.out_c],
    );
    let kernel = QKernel {
        weight,
        bias: &bias,
        multiplier: &m,
        shift: &r,
        packed: None,
    };
    let zps = ZeroPoints {
        input: zp_in,
        output: zp_out,
    };
    let mut q = vec![0i8; g.out_c * g.out_h() * g.out_w()];
    kernels
        .conv2d_int8(&geometry_of(g), codes, &kernel, zps, &mut q)
        .unwrap();
    let rq = int8_reference::Requant {
        bias: &bias,
        multiplier: &m,
        shift: &r,
        zp_in,
        zp_out,
    };
    assert_eq!(
        q,
        int8_reference::conv(codes, weight, g, &rq),
        "{g:?}, zero points {zp_in}, {zp_out}"
    );
}

/// int8 convolutions whose input side plus padding is 255 and 257: the AVX-512 packer
/// tells the padding from the input by comparing rows and columns as bytes below 256 (at
/// 257 the padding's columns would wrap into the input's) and packs tap by tap past it;
/// both must give the definition's codes (rows and columns, strides 1 and 4).
fn int8_convs_at_the_byte_edge_match<K: Kernels>(kernels: &K) {
    let mut rng = Lcg(17);
    for (h, w) in [(3, 250), (3, 252), (250, 3), (252, 3)] {
        for stride in [1, 4] {
            let g = ConvGeom {
                c: 2,
                h,
                w,
                out_c: 5,
                k: 11,
                stride,
                pad: 5,
                groups: 1,
            };
            let codes: Vec<i8> = (0..g.c * g.h * g.w).map(|_| rng.i8()).collect();
            let weight: Vec<i8> = (0..g.out_c * g.c * g.k * g.k)
                .map(|_| rng.i8().max(-127))
                .collect();
            int8_conv_matches(kernels, &g, &codes, &weight, -7, 17, (3, -2));
        }
    }
}

/// Rows past the AVX2 packers' i32 lanes (2^14 + 3 values) and an input zero point no blob
/// has (300): whatever code an implementation takes for them, the same bits.
fn unusual_geometries_match<K: Kernels>(kernels: &K) {
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
        let mut out = vec![0.0f32; g.out_c * g.out_h() * g.out_w()];
        kernels
            .conv2d(&geometry_of(&g), &input, &weight, &bias, &mut out)
            .unwrap();
        assert_eq!(
            bits(&out),
            bits(&contract::conv(&input, &weight, &bias, &g)),
            "{g:?}"
        );
        let codes: Vec<i8> = input.iter().map(|_| rng.i8()).collect();
        let qweight: Vec<i8> = weight.iter().map(|_| rng.i8().max(-127)).collect();
        for zp_in in [9, 300] {
            int8_conv_matches(kernels, &g, &codes, &qweight, 5, 20, (zp_in, -1));
        }
    }
}

/// Shapes proptest once shrank failures to (odd rows padded for the DSP kernel, a stride
/// past the input, a kernel taller than a one-column input), kept as fixed cases.
fn regression_geometries_match<K: Kernels>(kernels: &K, expect: impl Fn(Op) -> KernelPath) {
    let mut rng = Lcg(3);
    for (c, h, w, k, stride, pad) in [(3, 3, 7, 2, 2, 1), (1, 8, 8, 1, 4, 0), (1, 8, 1, 5, 1, 2)] {
        let g = ConvGeom {
            c,
            h,
            w,
            out_c: 3,
            k,
            stride,
            pad,
            groups: 1,
        };
        let n_w = g.out_c * c * k * k;
        let input: Vec<f32> = (0..c * h * w).map(|_| rng.f32()).collect();
        let weight: Vec<f32> = (0..n_w).map(|_| rng.f32()).collect();
        let bias: Vec<f32> = (0..g.out_c).map(|_| rng.f32()).collect();
        let mut out = vec![0.0f32; g.out_c * g.out_h() * g.out_w()];
        kernels
            .conv2d(&geometry_of(&g), &input, &weight, &bias, &mut out)
            .unwrap();
        assert_eq!(
            bits(&out),
            bits(&contract::conv(&input, &weight, &bias, &g)),
            "{g:?}"
        );
        for with_packed in [false, true] {
            let case = (
                g,
                (0..c * h * w).map(|_| rng.i8()).collect(),
                (0..n_w).map(|_| rng.i8().max(-127)).collect(),
                (vec![7; 3], vec![(1 << 30) + 99; 3], vec![18; 3]),
                -5,
                4,
                false,
            );
            int8_conv_check(kernels, &expect, case, with_packed).unwrap();
        }
    }
}

/// The suite, for one implementation: `$kernels` makes it, `$expect` maps an [`Op`] to the
/// path it must report.
macro_rules! kernel_suite {
    ($name:ident, $kernels:expr, $expect:expr) => {
        kernel_suite!($name, $kernels, $expect, false);
    };
    ($name:ident, $kernels:expr, $expect:expr, $skip:expr) => {
        mod $name {
            use super::*;

            fn kernels() -> impl Kernels {
                $kernels
            }

            /// Whether this machine lacks these kernels: each test then returns at once.
            fn skip() -> bool {
                $skip
            }

            fn expect(op: Op) -> KernelPath {
                let f: fn(Op) -> KernelPath = $expect;
                f(op)
            }

            /// Layers whose padded input exceeds the Cortex-M kernel's copy buffer (its patches
            /// come straight from the input) or only its small one, with prepacked weights, in
            /// the exact regime and not.
            #[test]
            fn int8_conv_with_prepacked_weights_on_a_large_input() {
                if skip() { return; }
                for exact in [false, true] {
                    int8_conv_check(&kernels(), &expect, large_int8_conv(exact), true).unwrap();
                    int8_conv_check(&kernels(), &expect, medium_int8_conv(exact), true).unwrap();
                }
            }

            #[test]
            fn int8_conv_with_many_output_channels() {
                if skip() { return; }
                for exact in [false, true] {
                    int8_conv_check(&kernels(), &expect, many_channels_int8_conv(exact), false)
                        .unwrap();
                }
            }

            proptest! {
                #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

                #[test]
                fn f32_conv((g, input, weight, bias, specials) in f32_conv_case()) {
                    if skip() { return Ok(()); }
                    let mut out = vec![1.5f32; g.out_c * g.out_h() * g.out_w()];
                    let path = kernels().conv2d(&geometry_of(&g), &input, &weight, &bias, &mut out).unwrap();
                    prop_assert_eq!(path, expect(Op::Conv { taps: g.c / g.groups * g.k * g.k }));
                    prop_assert_eq!(bits(&out), bits(&contract::conv(&input, &weight, &bias, &g)), "{:?}", g);
                    if !specials {
                        let (val, mag) = exact::conv(&input, &weight, &bias, &g);
                        let taps = g.c / g.groups * g.k * g.k;
                        for i in 0..out.len() {
                            let bound = gamma(taps + 1) * mag[i];
                            prop_assert!((out[i] as f64 - val[i]).abs() <= bound, "output {}: {} vs {}", i, out[i], val[i]);
                        }
                    }
                }

                #[test]
                fn f32_linear(
                    (input, weight, bias) in (1usize..=300, 1usize..=8).prop_flat_map(|(n, o)| {
                        (vec(value(n % 3 == 0), n), vec(-1.0f32..1.0, n * o), vec(-1.0f32..1.0, o))
                    })
                ) {
                    if skip() { return Ok(()); }
                    let mut out = vec![0.0; bias.len()];
                    prop_assert_eq!(kernels().linear(&input, &weight, &bias, &mut out).unwrap(), expect(Op::Linear));
                    prop_assert_eq!(bits(&out), bits(&contract::linear(&input, &weight, &bias)));
                    if input.iter().all(|x| x.is_finite() && (*x == 0.0 || x.abs() >= f32::MIN_POSITIVE)) && input.iter().all(|x| x.abs() <= 2.0) {
                        let (val, mag) = exact::linear(&input, &weight, &bias);
                        for i in 0..out.len() {
                            let bound = gamma(input.len() + 1) * mag[i];
                            prop_assert!((out[i] as f64 - val[i]).abs() <= bound, "output {}: {} vs {}", i, out[i], val[i]);
                        }
                    }
                }

                #[test]
                fn f32_lrn(
                    (c, plane, half, k, alpha, beta, averaged, input) in
                        (1usize..=20, 1usize..=40, 0u32..=7, 0.5f32..3.0, 0.0f32..0.05, prop_oneof![Just(0.75f32), 0.0f32..1.0], any::<bool>())
                            .prop_flat_map(|(c, plane, half, k, alpha, beta, averaged)| {
                                (Just(c), Just(plane), Just(half), Just(k), Just(alpha), Just(beta), Just(averaged), vec(-10.0f32..10.0, c * plane))
                            })
                ) {
                    if skip() { return Ok(()); }
                    let size = 2 * half + 1;
                    let convention = if averaged { LrnConvention::AlphaOverN } else { LrnConvention::Paper };
                    let spec = LrnSpec { size, alpha, beta, k, convention };
                    let alpha_eff = spec.alpha_effective();
                    let mut out = input.clone();
                    prop_assert_eq!(kernels().lrn(&mut out, Shape::new(c, plane, 1), &spec).unwrap(), expect(Op::Lrn));
                    let n = size as usize;
                    prop_assert_eq!(bits(&out), bits(&contract::lrn(&input, c, plane, n, k, alpha_eff, beta)));
                    let val = exact::lrn(&input, c, plane, n, k as f64, alpha_eff as f64, beta as f64);
                    let rel = beta as f64 * gamma(n + 2) + 4.0 * U32;
                    for i in 0..out.len() {
                        prop_assert!((out[i] as f64 - val[i]).abs() <= rel * val[i].abs(), "output {}: {} vs {}", i, out[i], val[i]);
                    }
                }

                #[test]
                fn f32_max_pool_and_relu(
                    (c, h, w, win, stride, input) in (1usize..=4, 0usize..8, 0usize..40, 1usize..=4, 1usize..=3)
                        .prop_flat_map(|(c, dh, dw, win, stride)| {
                            let (h, w) = (win + dh, win + dw);
                            (Just(c), Just(h), Just(w), Just(win), Just(stride), vec(value(true), c * h * w))
                        })
                ) {
                    if skip() { return Ok(()); }
                    let g = PoolGeometry::new(&PoolSpec { window: win as u32, stride: stride as u32 }, Shape::new(c, h, w)).unwrap();
                    let mut out = vec![0.0; g.output().len()];
                    prop_assert_eq!(kernels().max_pool(&g, &input, &mut out).unwrap(), expect(Op::MaxPool { stride }));
                    prop_assert_eq!(bits(&out), bits(&exact::max_pool(&input, c, h, w, win, stride)));
                    let mut r = input.clone();
                    prop_assert_eq!(kernels().relu(&mut r), expect(Op::Relu));
                    let mut want = input.clone();
                    contract::relu(&mut want);
                    prop_assert_eq!(bits(&r), bits(&want));
                }

                #[test]
                fn f32_adaptive_avg_pool(
                    (c, h, w, oh, ow, input) in (1usize..=3, 1usize..=12, 1usize..=12)
                        .prop_flat_map(|(c, h, w)| (Just(c), Just(h), Just(w), 1..=h, 1..=w, vec(-5.0f32..5.0, c * h * w)))
                ) {
                    if skip() { return Ok(()); }
                    let g = AdaptivePoolGeometry::new(Shape::new(c, h, w), oh as u32, ow as u32).unwrap();
                    let mut out = vec![0.0; c * oh * ow];
                    prop_assert_eq!(kernels().adaptive_avg_pool(&g, &input, &mut out).unwrap(), expect(Op::Other));
                    prop_assert_eq!(bits(&out), bits(&contract::adaptive_avg_pool(&input, c, h, w, oh, ow)));
                    let val = exact::adaptive_avg_pool(&input, c, h, w, oh, ow);
                    let count = (h / oh + 2) * (w / ow + 2);
                    let bound = (gamma(count) + U32) * 5.0;
                    for i in 0..out.len() {
                        prop_assert!((out[i] as f64 - val[i]).abs() <= bound, "output {}: {} vs {}", i, out[i], val[i]);
                    }
                }

                #[test]
                fn int8_conv(case in int8_conv_case()) {
                    if skip() { return Ok(()); }
                    int8_conv_check(&kernels(), &expect, case, false)?;
                }

                #[test]
                fn int8_conv_with_prepacked_weights(case in int8_conv_case()) {
                    if skip() { return Ok(()); }
                    int8_conv_check(&kernels(), &expect, case, true)?;
                }

                #[test]
                fn int8_linear(
                    (input, weight, (bias, multiplier, shift), zp_in, zp_out) in (1usize..=300, 1usize..=6).prop_flat_map(|(n, o)| {
                        (vec(any::<i8>(), n), vec(-127i8..=127, n * o), requant(o), -128i32..=127, -128i32..=127)
                    })
                ) {
                    if skip() { return Ok(()); }
                    let kernel = QKernel { weight: &weight, bias: &bias, multiplier: &multiplier, shift: &shift, packed: None };
                    let mut out = vec![0i8; bias.len()];
                    let zps = ZeroPoints { input: zp_in, output: zp_out };
                    prop_assert_eq!(kernels().linear_int8(&input, &kernel, zps, &mut out).unwrap(), expect(Op::LinearInt8 { inputs: input.len() }));
                    let rq = int8_reference::Requant { bias: &bias, multiplier: &multiplier, shift: &shift, zp_in, zp_out };
                    prop_assert_eq!(out, int8_reference::linear(&input, &weight, &rq));
                }

                #[test]
                fn int8_lrn(
                    (c, plane, half, q, zp_in, zp_out, input, table) in (1usize..=20, prop_oneof![1usize..=6, 40usize..=110, 250usize..=300], 0u32..=7, 0u32..=62, -128i32..=127, -128i32..=127)
                        .prop_flat_map(|(c, plane, half, q, zp_in, zp_out)| {
                            let n = 2 * half + 1;
                            let len = int8::lrn_table_len(int8::lrn_max_sum(n));
                            // Realistic factors are below 2^q (at most 1 in real terms), so
                            // outputs land inside the int8 range instead of saturating; any
                            // i32 entries too, whose neighbours differ by up to 2^32 (planes
                            // of up to 300 pixels span several of the kernels' pixel blocks).
                            // Shifts up to 62 (the format's limit); past about 37 the
                            // products are too small to move an output by a code.
                            let cap = (1i64 << q).min(i32::MAX as i64) as i32;
                            // Walks within 0..=cap whose steps reach an eighth of it (below
                            // 2^30): the kernels' 32-bit form with interpolations that move
                            // outputs by many codes (up to Q = 37 or so, as above).
                            let reach = (cap / 8).clamp(1, (1 << 29) - 1);
                            let walk = (0..=cap, vec(-reach..=reach, len)).prop_map(move |(start, steps)| {
                                steps.iter().scan(start as i64, |g, &d| { let at = *g as i32; *g = (*g + d as i64).clamp(0, cap as i64); Some(at) }).collect::<Vec<i32>>()
                            });
                            let table = prop_oneof![3 => vec(0i32..=cap, len), 2 => walk, 1 => vec(any::<i32>(), len)];
                            (Just(c), Just(plane), Just(half), Just(q), Just(zp_in), Just(zp_out), vec(any::<i8>(), c * plane), table)
                        })
                ) {
                    if skip() { return Ok(()); }
                    let size = 2 * half + 1;
                    let spec = LrnSpec { size, alpha: 1e-4, beta: 0.75, k: 2.0, convention: LrnConvention::Paper };
                    let mut out = input.clone();
                    let zps = ZeroPoints { input: zp_in, output: zp_out };
                    let table = LrnTable::new(&table, q);
                    prop_assert_eq!(kernels().lrn_int8(&mut out, Shape::new(c, plane, 1), &spec, table, zps).unwrap(), expect(Op::LrnInt8));
                    prop_assert_eq!(out, int8_reference::lrn(&input, c, plane, size as usize, table.table, q, zp_in, zp_out));
                }

                /// Tables as the quantizer makes them (smooth, neighbours a few percent
                /// apart), whose shift `Q` follows the ratio of the scales: 2^-14 to 2^14
                /// takes it from about 17 to about 45, across the 32-bit and high-word
                /// regimes of the kernels' arithmetic.
                #[test]
                fn int8_lrn_real_tables(
                    (c, plane, half, zp_in, zp_out, s_in, ratio, alpha, k) in (1usize..=12, prop_oneof![1usize..=6, 40usize..=110, 250usize..=300], 0u32..=4, -128i32..=127, -128i32..=127, 0.005f64..0.5, -14.0f64..14.0, 1e-5f64..1e-2, prop_oneof![Just(1.0f64), Just(2.0)]),
                    seed in any::<u64>(),
                ) {
                    if skip() { return Ok(()); }
                    let size = 2 * half + 1;
                    let (table, q) = int8_reference::lrn_table(size as usize, alpha, 0.75, k, s_in, s_in * 2f64.powf(ratio)).unwrap();
                    // Codes skewed towards the zero point, as after a ReLU.
                    let mut state = seed | 1;
                    let input: Vec<i8> = (0..c * plane).map(|_| {
                        state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                        if state % 3 == 0 { zp_in as i8 } else { (state >> 24) as i8 }
                    }).collect();
                    let spec = LrnSpec { size, alpha: 1e-4, beta: 0.75, k: 2.0, convention: LrnConvention::Paper };
                    let mut out = input.clone();
                    let zps = ZeroPoints { input: zp_in, output: zp_out };
                    // The step check done once by the caller, as a parsed model does.
                    let lrn_table = LrnTable { table: &table, shift: q, steps_fit: Some(int8::lrn_steps_fit(&table)) };
                    prop_assert_eq!(kernels().lrn_int8(&mut out, Shape::new(c, plane, 1), &spec, lrn_table, zps).unwrap(), expect(Op::LrnInt8));
                    prop_assert_eq!(out, int8_reference::lrn(&input, c, plane, size as usize, &table, q, zp_in, zp_out));
                }

                #[test]
                fn int8_pools_and_relu(
                    (c, h, w, win, stride, oh, ow, zp, input) in (1usize..=4, 1usize..=4, 0usize..8, 0usize..8, 1usize..=3)
                        .prop_flat_map(|(c, win, dh, dw, stride)| {
                            let (h, w) = (win + dh, win + dw);
                            (Just(c), Just(h), Just(w), Just(win), Just(stride), 1..=h, 1..=w, -128i32..=127, vec(any::<i8>(), c * h * w))
                        })
                ) {
                    if skip() { return Ok(()); }
                    let g = PoolGeometry::new(&PoolSpec { window: win as u32, stride: stride as u32 }, Shape::new(c, h, w)).unwrap();
                    let mut out = vec![0i8; g.output().len()];
                    prop_assert_eq!(kernels().max_pool_int8(&g, &input, &mut out).unwrap(), expect(Op::MaxPoolInt8 { in_w: w }));
                    prop_assert_eq!(&out, &int8_reference::max_pool(&input, c, h, w, win, stride));
                    let g = AdaptivePoolGeometry::new(Shape::new(c, h, w), oh as u32, ow as u32).unwrap();
                    let mut avg = vec![0i8; c * oh * ow];
                    prop_assert_eq!(kernels().adaptive_avg_pool_int8(&g, &input, &mut avg).unwrap(), expect(Op::Other));
                    prop_assert_eq!(&avg, &int8_reference::adaptive_avg_pool(&input, c, h, w, oh, ow));
                    let mut r = input.clone();
                    prop_assert_eq!(kernels().relu_int8(&mut r, zp), expect(Op::ReluInt8));
                    prop_assert_eq!(r, int8_reference::relu(&input, zp));
                }
            }

            #[test]
            #[cfg_attr(miri, ignore = "a billion MACs: too slow to interpret")]
            fn paper_convolutions_at_full_size() {
                if skip() { return; }
                super::paper_convolutions_at_full_size(&kernels(), expect);
            }

            #[test]
            fn padding_products_are_materialized() {
                if skip() { return; }
                super::padding_products_are_materialized(&kernels());
            }

            #[test]
            #[cfg_attr(miri, ignore = "rows of 2^14 values: too slow to interpret")]
            fn unusual_geometries_match() {
                if skip() { return; }
                super::unusual_geometries_match(&kernels());
            }

            #[test]
            #[cfg_attr(miri, ignore = "rows of 250 codes and more, by each reference: minutes to interpret")]
            fn int8_convs_at_the_byte_edge_match() {
                if skip() { return; }
                super::int8_convs_at_the_byte_edge_match(&kernels());
            }

            #[test]
            fn regression_geometries_match() {
                if skip() { return; }
                super::regression_geometries_match(&kernels(), expect);
            }

            #[test]
            #[cfg_attr(miri, ignore = "rows of 512 values and more, by each reference: minutes to interpret")]
            fn wide_int8_pools_match() {
                if skip() { return; }
                super::wide_int8_pools_match(&kernels(), expect);
            }

            #[test]
            #[cfg_attr(miri, ignore = "fc6-sized sums, by each reference: minutes to interpret")]
            fn long_int8_linear_matches() {
                if skip() { return; }
                super::long_int8_linear_matches(&kernels(), expect);
            }

            #[test]
            fn errors_match_the_reference() {
                if skip() { return; }
                super::errors_match_the_reference(&kernels());
            }
        }
    };
}

/// The x86-64 kernels, which the development and CI machines (x86-64 with AVX2) must have:
/// a machine without them fails here rather than skipping the suite.
#[cfg(target_arch = "x86_64")]
fn x86_avx2() -> alexnet_core::kernels::X86Avx2 {
    alexnet_core::kernels::X86Avx2::detect()
        .expect("this machine has no AVX2 (or is not x86-64): the x86-64 kernels are untested")
}

/// The AVX-512 kernels, where this machine has them.
#[cfg(target_arch = "x86_64")]
fn x86_avx512() -> alexnet_core::kernels::X86Avx512 {
    alexnet_core::kernels::X86Avx512::detect()
        .expect("AVX-512 with VNNI: checked by avx512_missing")
}

/// Whether this machine lacks AVX-512 F/BW/VL/VBMI and VNNI, so that the AVX-512 suite cannot run
/// (it says so on stderr). With `ALEXNET_REQUIRE_AVX512` set, a machine without them fails
/// instead: for machines that must test those kernels.
#[cfg(target_arch = "x86_64")]
fn avx512_missing() -> bool {
    let missing = alexnet_core::kernels::X86Avx512::detect().is_none();
    if missing {
        assert!(
            std::env::var_os("ALEXNET_REQUIRE_AVX512").is_none(),
            "ALEXNET_REQUIRE_AVX512 is set, but this machine has no AVX-512 with VNNI"
        );
        eprintln!(
            "skipped: this machine has no AVX-512 with VNNI, the AVX-512 kernels are untested here"
        );
    }
    missing
}

/// What the AVX-512 kernels run: their own convolutions, f32 max pool (strides 1 and 2), int8
/// max pool (rows of up to 64 codes), integer LRN, f32 fully connected layer and int8 one (up
/// to the input their buffer holds), the AVX2 kernels' paths elsewhere.
#[cfg(target_arch = "x86_64")]
fn avx512_paths(op: Op) -> KernelPath {
    match op {
        Op::Conv { .. } | Op::ConvInt8 { .. } | Op::Linear => KernelPath::X86Avx512,
        Op::MaxPool { stride } if stride <= 2 => KernelPath::X86Avx512,
        Op::LrnInt8 => KernelPath::X86Avx512,
        Op::MaxPoolInt8 { in_w }
            if in_w <= alexnet_core::kernels::x86_64::MAX_AVX512_POOL_INT8_ROW =>
        {
            KernelPath::X86Avx512
        }
        Op::LinearInt8 { inputs }
            if inputs <= alexnet_core::kernels::x86_64::MAX_LINEAR_INT8_INPUT =>
        {
            KernelPath::X86Avx512
        }
        _ => x86_paths(op),
    }
}

/// What the x86-64 kernels run: their own convolutions, ReLUs, f32 and integer LRN, f32 fully
/// connected layer, int8 max pool (up to the rows its buffer holds) and int8 fully connected
/// layer (up to the input its buffer holds), the reference elsewhere.
#[cfg(target_arch = "x86_64")]
fn x86_paths(op: Op) -> KernelPath {
    match op {
        Op::Conv { .. }
        | Op::ConvInt8 { .. }
        | Op::Lrn
        | Op::LrnInt8
        | Op::Relu
        | Op::ReluInt8
        | Op::Linear => KernelPath::X86Avx2,
        Op::MaxPoolInt8 { in_w } if in_w <= MAX_POOL_ROW => KernelPath::X86Avx2,
        Op::LinearInt8 { inputs }
            if inputs <= alexnet_core::kernels::x86_64::MAX_LINEAR_INT8_INPUT =>
        {
            KernelPath::X86Avx2
        }
        Op::LinearInt8 { .. } | Op::MaxPoolInt8 { .. } | Op::MaxPool { .. } | Op::Other => {
            KernelPath::Reference
        }
    }
}

/// What the DSP kernels run: their own int8 convolution up to the patch their stack buffer
/// holds, their own int8 fully connected layer up to the input it holds, their own int8
/// ReLU, integer and f32 LRN, their own f32 convolution (up to its patch) and fully connected layer; the
/// reference elsewhere.
fn dsp_paths(op: Op) -> KernelPath {
    use alexnet_core::kernels::cortex_m::dsp::{MAX_LINEAR_INPUT, MAX_PATCH};
    match op {
        Op::Conv { taps } if taps <= MAX_F32_PATCH => KernelPath::CortexMDsp,
        Op::Linear => KernelPath::CortexMDsp,
        Op::ConvInt8 { taps, .. } if taps <= MAX_PATCH => KernelPath::CortexMDsp,
        Op::LinearInt8 { inputs } if inputs <= MAX_LINEAR_INPUT => KernelPath::CortexMDsp,
        Op::Lrn | Op::LrnInt8 => KernelPath::CortexMDsp,
        Op::MaxPoolInt8 { in_w } if in_w <= MAX_POOL_ROW => KernelPath::CortexMDsp,
        Op::ReluInt8 => KernelPath::CortexMDsp,
        _ => KernelPath::Reference,
    }
}

/// What the Cortex-M kernels for cores without DSP run: their own int8 convolution where the
/// host's prepacked weights are given (and laid out for the layer), their own integer and f32
/// LRN, their own f32 convolution (up to its patch) and fully connected layer; the reference
/// elsewhere.
fn cortex_m_paths(op: Op) -> KernelPath {
    match op {
        Op::Conv { taps } if taps <= MAX_F32_PATCH => KernelPath::CortexM,
        Op::ConvInt8 { packed: true, .. } | Op::Lrn | Op::LrnInt8 | Op::Linear => {
            KernelPath::CortexM
        }
        Op::MaxPoolInt8 { in_w } if in_w <= MAX_POOL_ROW => KernelPath::CortexM,
        _ => KernelPath::Reference,
    }
}

/// Two threads over the kernels [`alexnet_core::kernels::native`] picks on this machine.
#[cfg(not(miri))]
fn parallel() -> alexnet_host::parallel::Parallel {
    alexnet_host::parallel::Parallel::new(2).expect("a two-thread pool")
}

/// What [`alexnet_core::kernels::native`] runs here: the AVX-512 kernels on x86-64 with
/// them, else the AVX2 ones (which x86-64 machines must have, see [`x86_avx2`]), the
/// reference elsewhere (Miri interprets the suite for aarch64).
fn native_paths(op: Op) -> KernelPath {
    #[cfg(target_arch = "x86_64")]
    {
        if alexnet_core::kernels::X86Avx512::detect().is_some() {
            avx512_paths(op)
        } else {
            x86_paths(op)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = op;
        KernelPath::Reference
    }
}

kernel_suite!(reference, Reference, |_| KernelPath::Reference);
#[cfg(target_arch = "x86_64")]
kernel_suite!(x86_64, x86_avx2(), x86_paths);
#[cfg(target_arch = "x86_64")]
kernel_suite!(x86_64_avx512, x86_avx512(), avx512_paths, avx512_missing());
kernel_suite!(cortex_m_dsp, alexnet_core::kernels::CortexMDsp, dsp_paths);
kernel_suite!(cortex_m, alexnet_core::kernels::CortexM, cortex_m_paths);
// Not under Miri: it reports a Stacked Borrows violation inside crossbeam-epoch (rayon's
// work-stealing deques), not in this code (`docs/robustness.md`).
#[cfg(not(miri))]
kernel_suite!(parallel_native, parallel(), native_paths);
#[cfg(not(miri))]
kernel_suite!(
    parallel_dsp,
    alexnet_host::parallel::Parallel::with_kernels(2, alexnet_core::kernels::CortexMDsp).unwrap(),
    dsp_paths
);

/// `native()` is what the firmware and the host run by default: on this machine (x86-64
/// with AVX2, no `dsp` feature) the AVX-512 kernels where it has them, else the AVX2 ones.
#[cfg(target_arch = "x86_64")]
#[test]
fn native_is_the_machines_best() {
    let native = alexnet_core::kernels::native();
    println!("native kernels: {}", native.name());
    match alexnet_core::kernels::X86Avx512::detect() {
        Some(avx512) => assert_eq!(native.name(), avx512.name()),
        None => assert_eq!(native.name(), x86_avx2().name()),
    }
}
