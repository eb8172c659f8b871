//! Whole networks through the core, bit for bit against the contract reference, layer by
//! layer, for every built-in net.

use alexnet_core::builtin::{self, MICRO};
use alexnet_core::Model;
use alexnet_core::RunOptions;
use alexnet_host::init::paper_init;
use alexnet_host::BlobFile;
use alexnet_tests::contract;
use rand::{Rng, SeedableRng};

fn check_net(arch: &alexnet_core::Arch<'static>, seed: u64) {
    let spec = paper_init(arch, seed).unwrap();
    let file = BlobFile::from_bytes(&spec.to_blob().unwrap(), arch.name);
    let model = file.model().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Roughly the range of preprocessed pixels of each net.
    let input: Vec<f32> = (0..arch.input_len())
        .map(|_| rng.random_range(-2.5f32..2.5))
        .collect();

    let mut arena = vec![0u8; arch.observed_arena_bytes_f32()];
    let mut logits = vec![0.0f32; arch.classes()];
    let mut observed = Vec::new();
    model
        .run(
            &input,
            &mut arena,
            &mut logits,
            RunOptions::new().observe(&mut |i, shape, act| {
                assert_eq!(act.len(), shape.len(), "layer {i}");
                observed.push(act.to_vec())
            }),
        )
        .unwrap();
    let expected = contract::forward(&spec, &input);
    assert_eq!(observed.len(), expected.len());
    for (i, (got, want)) in observed.iter().zip(&expected).enumerate() {
        let same = got
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same && got.len() == want.len(),
            "{}: layer {i} ({:?}) differs",
            arch.name,
            arch.layers[i]
        );
    }
    assert_eq!(&logits, expected.last().unwrap());
    // The fused forward pass (conv -> ReLU/LRN -> pool a few rows at a time) in its smaller
    // arena: the same logits, bit for bit.
    let mut small = vec![0u8; arch.arena_bytes_f32()];
    let mut fused = vec![0.0f32; arch.classes()];
    model.forward(&input, &mut small, &mut fused).unwrap();
    assert_eq!(
        fused.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        logits.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "{}: fused forward differs",
        arch.name
    );
    assert!(
        logits.iter().all(|v| v.is_finite()),
        "{}: {logits:?}",
        arch.name
    );
    // The random net is not degenerate: its logits differ.
    assert!(logits.iter().any(|&v| v != logits[0]), "{}", arch.name);
}

#[test]
fn micro_is_bit_exact() {
    for seed in 0..4 {
        check_net(&MICRO, seed);
    }
}

#[test]
fn paper_is_bit_exact() {
    check_net(&builtin::PAPER, 11);
}

#[test]
fn caffe_is_bit_exact() {
    check_net(&builtin::CAFFE, 12);
}

#[test]
fn torchvision_is_bit_exact() {
    check_net(&builtin::TORCHVISION, 13);
}

#[test]
fn forward_is_deterministic_and_reentrant() {
    // Two models share nothing: the same input gives the same logits through either, and a
    // dirty arena does not leak into the result.
    let spec = paper_init(&MICRO, 5).unwrap();
    let blob = spec.to_blob().unwrap();
    let file = BlobFile::from_bytes(&blob, "micro");
    let model = Model::parse(file.bytes()).unwrap();
    let input = vec![0.25f32; 784];
    let mut a = vec![0u8; model.arena_bytes()];
    let mut b = vec![0xAAu8; model.arena_bytes()];
    let (mut la, mut lb) = ([0.0f32; 10], [0.0f32; 10]);
    model.forward(&input, &mut a, &mut la).unwrap();
    model.forward(&input, &mut b, &mut lb).unwrap();
    assert_eq!(la.map(f32::to_bits), lb.map(f32::to_bits));
}

mod random_architectures {
    use super::*;
    use alexnet_core::arch::{ConvSpec, Layer, LrnConvention, LrnSpec, PoolSpec, Shape};
    use alexnet_host::{LayerParams, ModelSpec};
    use proptest::prelude::{
        any, prop_assert, prop_assert_eq, prop_oneof, proptest, Just, ProptestConfig, Strategy,
    };

    fn layer() -> impl Strategy<Value = Layer> {
        prop_oneof![
            (1u32..=6, 1u32..=4, 1u32..=3, 0u32..=2, 1u32..=2).prop_map(|(o, k, s, p, g)| {
                Layer::Conv(ConvSpec {
                    out_channels: o * g,
                    kernel: k,
                    stride: s,
                    padding: p.min(k - 1),
                    groups: g,
                })
            }),
            Just(Layer::Relu),
            (0u32..=3, any::<bool>()).prop_map(|(half, avg)| Layer::Lrn(LrnSpec {
                size: 2 * half + 1,
                alpha: 1e-2,
                beta: 0.75,
                k: 1.5,
                convention: if avg {
                    LrnConvention::AlphaOverN
                } else {
                    LrnConvention::Paper
                },
            })),
            (1u32..=3, 1u32..=2)
                .prop_map(|(window, stride)| Layer::MaxPool(PoolSpec { window, stride })),
            (1u32..=3, 1u32..=3).prop_map(|(out_h, out_w)| Layer::AdaptiveAvgPool { out_h, out_w }),
            Just(Layer::Dropout { p: 0.5 }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Random layer stacks ending in a classifier: every valid one runs through the
        /// core bit-exactly like the contract reference; every invalid one is refused.
        #[test]
        fn random_nets_match_the_contract(
            c in prop_oneof![Just(1usize), Just(3usize)], h in 1usize..=12, w in 1usize..=12,
            body in proptest::collection::vec(layer(), 0..6),
            classes in 1u32..=5, seed in any::<u64>(),
        ) {
            let mut layers = body;
            layers.extend([Layer::Flatten, Layer::Linear { out_features: classes }, Layer::Softmax]);
            let arch = alexnet_core::Arch { name: "random", input: Shape::new(c, h, w), layers: &layers };
            let Ok(plan) = arch.plan() else {
                // The writer refuses what the parser would refuse.
                let spec = ModelSpec { name: "random".into(), input: arch.input, layers: layers.clone(), params: vec![None; layers.len()],
                    preprocess: alexnet_host::profile::preprocess_for(&alexnet_core::builtin::MICRO), labels: None, quant: None };
                prop_assert!(spec.to_blob().is_err());
                return Ok(());
            };
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let params = arch.walk().map(|s| {
                let s = s.unwrap();
                s.layer.has_params().then(|| LayerParams {
                    weight: (0..s.layer.weight_len(s.input).unwrap()).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
                    bias: (0..s.layer.bias_len()).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
                })
            }).collect();
            let mut preprocess = alexnet_host::profile::preprocess_for(&alexnet_core::builtin::MICRO);
            preprocess.channel_order = if c == 3 { alexnet_core::model::ChannelOrder::Rgb } else { alexnet_core::model::ChannelOrder::Gray };
            preprocess.resize = 0;
            preprocess.mean = alexnet_host::MeanSpec::None;
            preprocess.std = None;
            let spec = ModelSpec { name: "random".into(), input: arch.input, layers: layers.clone(), params, preprocess, labels: None, quant: None };
            let blob = spec.to_blob().unwrap();
            let file = BlobFile::from_bytes(&blob, "random");
            let model = file.model().unwrap();
            prop_assert_eq!(model.arena_bytes(), arch.arena_bytes_f32());
            let input: Vec<f32> = (0..arch.input_len()).map(|_| rng.random_range(-2.0f32..2.0)).collect();
            let mut arena = vec![0u8; model.arena_bytes()];
            let mut logits = vec![0.0f32; plan.output.len()];
            model.forward(&input, &mut arena, &mut logits).unwrap();
            let expected = contract::forward(&spec, &input);
            let want: Vec<u32> = expected.last().unwrap().iter().map(|v| v.to_bits()).collect();
            let got: Vec<u32> = logits.iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(got, want);
        }
    }
}

/// Reference kernels that count their convolution calls and say whether they prefer whole
/// layers.
struct Counting {
    whole: bool,
    convs: std::sync::atomic::AtomicUsize,
}

impl alexnet_core::kernels::Kernels for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }

    fn prefers_whole_layers(&self) -> bool {
        self.whole
    }

    fn conv2d(
        &self,
        g: &alexnet_core::geometry::ConvGeometry,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<alexnet_core::kernels::KernelPath, alexnet_core::Error> {
        self.convs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        alexnet_core::kernels::Reference.conv2d(g, input, weight, bias, output)
    }
}

#[test]
fn a_fused_pass_runs_whole_layers_where_the_kernels_prefer_and_the_arena_allows() {
    let spec = paper_init(&MICRO, 3).unwrap();
    let file = BlobFile::from_bytes(&spec.to_blob().unwrap(), "micro");
    let model = file.model().unwrap();
    let input = vec![0.5f32; MICRO.input_len()];
    let convs = MICRO
        .layers
        .iter()
        .filter(|l| matches!(l, alexnet_core::arch::Layer::Conv(_)))
        .count();
    let run = |whole: bool, arena: usize| {
        let kernels = Counting {
            whole,
            convs: 0.into(),
        };
        let mut arena = vec![0u8; arena];
        let mut logits = vec![0.0f32; MICRO.classes()];
        let options = RunOptions::new().kernels(&kernels);
        model.run(&input, &mut arena, &mut logits, options).unwrap();
        (
            kernels.convs.into_inner(),
            logits.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        )
    };
    let (small, large) = (model.arena_bytes(), model.observed_arena_bytes());
    let (fused_calls, fused) = run(false, large);
    let (whole_calls, whole) = run(true, large);
    let (cramped_calls, cramped) = run(true, small);
    assert_eq!(whole_calls, convs, "one call per convolution, whole");
    assert!(
        fused_calls > convs,
        "fused chains call per row: {fused_calls}"
    );
    assert_eq!(
        cramped_calls, fused_calls,
        "no room for whole layers: fused"
    );
    assert_eq!(whole, fused);
    assert_eq!(cramped, fused);
}
