//! The published facts of every built-in net (`docs/architectures.md`), checked against the
//! `const fn` results.

use alexnet_core::arch::Shape;
use alexnet_core::builtin::{self, CAFFE, MICRO, PAPER, TORCHVISION};
use alexnet_core::Arch;

/// `const` evaluation: firmware can size static buffers with these.
const PAPER_ARENA: usize = PAPER.arena_bytes_f32();
static MICRO_ARENA: [u8; MICRO.arena_bytes_f32()] = [0; MICRO.arena_bytes_f32()];

struct Facts {
    arch: &'static Arch<'static>,
    params: usize,
    macs: u64,
    /// Output shapes of the conv layers, in order.
    conv_outputs: &'static [(usize, usize, usize)],
    /// Shape entering the classifier.
    classifier_input: usize,
    classes: usize,
    largest_activation: usize,
    /// The fused forward pass's arena (conv -> ReLU/LRN -> max pool a few rows at a time).
    arena_elems: usize,
    /// The observed forward pass's arena (every layer's output whole).
    observed_arena_elems: usize,
}

/// A fused chain's scratch: the padded input band of the `rows` convolution rows one call
/// computes (`c_in x ((rows - 1) * stride + k) x (w + 2p)`), the ring of the pool's 3 rows,
/// the call's convolution rows and one pooled row. `rows` is the pool's stride, 2, unless a
/// one-row band of a group fits the Cortex-M int8 kernel's 8,192-value padded copy and a
/// two-row band does not: then 1.
#[allow(clippy::too_many_arguments)] // a chain's dimensions, named at each use
const fn chain_scratch(
    c_in: usize,
    k: usize,
    stride: usize,
    rows: usize,
    padded_w: usize,
    c: usize,
    conv_w: usize,
    pool_w: usize,
) -> usize {
    c_in * ((rows - 1) * stride + k) * padded_w + c * 3 * conv_w + c * rows * conv_w + c * pool_w
}

const TABLE: &[Facts] = &[
    Facts {
        arch: &PAPER,
        params: 60_965_224,
        macs: 724_406_816,
        conv_outputs: &[
            (96, 55, 55),
            (256, 27, 27),
            (384, 13, 13),
            (384, 13, 13),
            (256, 13, 13),
        ],
        classifier_input: 9216,
        classes: 1000,
        largest_activation: 290_400,
        // Fused, the peak is conv2's chain: pool1's 96x27x27 in, pool2's 256x13x13 out, and
        // the scratch of 96 x 5 x (27 + 4) band, 3 rows of 256 x 27, a row, a pooled row (one
        // row per call: a group's band is 48 x 5 x 31 = 7,440 values, 8,928 with two rows).
        arena_elems: 69_984 + 43_264 + chain_scratch(96, 5, 1, 1, 31, 256, 27, 13),
        // maxpool1 reads conv1's 290,400 values and writes 96x27x27 = 69,984 beside them.
        observed_arena_elems: 290_400 + 69_984,
    },
    Facts {
        arch: &CAFFE,
        params: 60_965_224,
        macs: 724_406_816,
        conv_outputs: &[
            (96, 55, 55),
            (256, 27, 27),
            (384, 13, 13),
            (384, 13, 13),
            (256, 13, 13),
        ],
        classifier_input: 9216,
        classes: 1000,
        largest_activation: 290_400,
        arena_elems: 69_984 + 43_264 + chain_scratch(96, 5, 1, 1, 31, 256, 27, 13),
        observed_arena_elems: 290_400 + 69_984,
    },
    Facts {
        arch: &TORCHVISION,
        params: 61_100_840,
        macs: 714_188_480,
        conv_outputs: &[
            (64, 55, 55),
            (192, 27, 27),
            (384, 13, 13),
            (256, 13, 13),
            (256, 13, 13),
        ],
        classifier_input: 9216,
        classes: 1000,
        largest_activation: 64 * 55 * 55,
        // conv2's chain: 64x27x27 in, 192x13x13 out, its scratch (two rows per call: even one
        // row's band, 64 x 5 x 31, exceeds the padded copy).
        arena_elems: 64 * 27 * 27 + 192 * 13 * 13 + chain_scratch(64, 5, 1, 2, 31, 192, 27, 13),
        observed_arena_elems: 64 * 55 * 55 + 64 * 27 * 27,
    },
    Facts {
        arch: &MICRO,
        params: 268_426,
        macs: 6_395_904,
        conv_outputs: &[
            (32, 28, 28),
            (64, 13, 13),
            (96, 6, 6),
            (96, 6, 6),
            (64, 6, 6),
        ],
        classifier_input: 256,
        classes: 10,
        largest_activation: 32 * 28 * 28,
        // conv2's chain: 32x13x13 in, 64x6x6 out, its scratch (two rows per call).
        arena_elems: 32 * 13 * 13 + 64 * 6 * 6 + chain_scratch(32, 3, 1, 2, 15, 64, 13, 6),
        observed_arena_elems: 32 * 28 * 28 + 32 * 13 * 13,
    },
];

#[test]
fn every_builtin_matches_its_facts() {
    assert_eq!(
        TABLE.len(),
        builtin::ALL.len(),
        "every built-in net needs a row"
    );
    for f in TABLE {
        let a = f.arch;
        let plan = a.plan().unwrap_or_else(|e| panic!("{}: {e:?}", a.name));
        assert_eq!(plan.params, f.params, "{} params", a.name);
        assert_eq!(plan.macs, f.macs, "{} MACs", a.name);
        assert_eq!(
            plan.output,
            Shape::new(f.classes, 1, 1),
            "{} classes",
            a.name
        );
        assert_eq!(
            plan.largest_activation, f.largest_activation,
            "{} largest activation",
            a.name
        );
        assert_eq!(plan.arena_elems, f.arena_elems, "{} arena", a.name);
        assert_eq!(
            plan.observed_arena_elems, f.observed_arena_elems,
            "{} observed arena",
            a.name
        );
        let steps: Vec<_> = a.walk().map(|s| s.unwrap()).collect();
        let convs: Vec<(usize, usize, usize)> = steps
            .iter()
            .filter(|s| matches!(s.layer, alexnet_core::Layer::Conv(_)))
            .map(|s| (s.output.c, s.output.h, s.output.w))
            .collect();
        assert_eq!(convs, f.conv_outputs, "{} conv shapes", a.name);
        let first_fc = steps
            .iter()
            .find(|s| matches!(s.layer, alexnet_core::Layer::Linear { .. }));
        assert_eq!(
            first_fc.map(|s| s.input.len()),
            Some(f.classifier_input),
            "{} fc6 input",
            a.name
        );
    }
}

#[test]
fn published_rounded_figures() {
    // The published figures `docs/architectures.md` cites: 724.4 M MACs (paper), 714.2 M
    // (torchvision), and the paper net's MACs per layer.
    assert_eq!(format!("{:.1}", PAPER.macs() as f64 / 1e6), "724.4");
    assert_eq!(format!("{:.1}", TORCHVISION.macs() as f64 / 1e6), "714.2");
    let per_layer: Vec<String> = PAPER
        .walk()
        .map(|s| s.unwrap())
        .filter(|s| s.layer.has_params())
        .map(|s| format!("{:.1}", s.layer.macs(s.input, s.output) as f64 / 1e6))
        .collect();
    assert_eq!(
        per_layer,
        ["105.4", "223.9", "149.5", "112.1", "74.8", "37.7", "16.8", "4.1"]
    );
}

#[test]
fn const_fns_work_in_const_context() {
    assert_eq!(PAPER_ARENA, 159_104 * 4 + 63);
    const PAPER_INT8: usize = PAPER.arena_bytes_int8();
    assert_eq!(PAPER_INT8, 159_104 + 63);
    const PAPER_OBSERVED: usize = PAPER.observed_arena_bytes_int8();
    assert_eq!(PAPER_OBSERVED, 290_400 + 69_984 + 63);
    // The fast-kernel issue's bound: at most 0.55 x (the paper's 227x227x3 input + conv1's
    // 96x55x55 output), what a whole-tensor planner must hold at once.
    const { assert!(PAPER_INT8 <= 444_987 * 55 / 100) };
    for f in TABLE {
        assert_eq!(
            f.arch.arena_bytes_int8(),
            f.arena_elems + 63,
            "{}",
            f.arch.name
        );
        assert_eq!(
            f.arch.arena_bytes_f32(),
            f.arena_elems * 4 + 63,
            "{}",
            f.arch.name
        );
        assert_eq!(
            f.arch.observed_arena_bytes_f32(),
            f.observed_arena_elems * 4 + 63,
            "{}",
            f.arch.name
        );
    }
    assert_eq!(MICRO_ARENA.len(), MICRO.arena_bytes_f32());
}

#[test]
fn micro_fits_a_microcontroller() {
    // int8 weights "well under 1 MiB": one byte per weight plus 4 per bias.
    let params = MICRO.param_count();
    assert!(params < 300_000, "{params}");
    assert!(MICRO.arena_bytes_f32() < 128 * 1024);
    // The small net keeps what makes AlexNet AlexNet.
    let has = |f: fn(&alexnet_core::Layer) -> bool| MICRO.layers.iter().any(f);
    assert!(has(|l| matches!(l, alexnet_core::Layer::Lrn(_))));
    assert!(has(
        |l| matches!(l, alexnet_core::Layer::Conv(c) if c.groups == 2)
    ));
    assert!(has(
        |l| matches!(l, alexnet_core::Layer::MaxPool(p) if p.window == 3 && p.stride == 2)
    ));
}

#[test]
fn caffe_differs_from_the_paper_only_in_lrn() {
    use alexnet_core::arch::LrnConvention;
    for (p, c) in PAPER.layers.iter().zip(CAFFE.layers) {
        match (p, c) {
            (alexnet_core::Layer::Lrn(a), alexnet_core::Layer::Lrn(b)) => {
                assert_eq!((a.k, a.convention), (2.0, LrnConvention::Paper));
                assert_eq!((b.k, b.convention), (1.0, LrnConvention::AlphaOverN));
                assert_eq!((a.size, a.alpha, a.beta), (b.size, b.alpha, b.beta));
            }
            _ => assert_eq!(p, c),
        }
    }
}
