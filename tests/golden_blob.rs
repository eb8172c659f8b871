//! A small blob checked into the repository: the writer must keep producing it byte for byte
//! (the format is stable), and `include_model!` must embed it aligned and parseable, as
//! firmware does. After a deliberate format change, regenerate it with
//! `ALEXNET_BLESS=1 cargo test -p alexnet-tests --test golden_blob`.

use alexnet_core::arch::{ConvSpec, Layer, LrnConvention, LrnSpec, PoolSpec, Shape};
use alexnet_core::{include_model, Arch, Model};

const TINY_LAYERS: [Layer; 10] = [
    Layer::Conv(ConvSpec {
        out_channels: 4,
        kernel: 3,
        stride: 1,
        padding: 1,
        groups: 1,
    }),
    Layer::Relu,
    Layer::Lrn(LrnSpec {
        size: 3,
        alpha: 1e-2,
        beta: 0.75,
        k: 2.0,
        convention: LrnConvention::Paper,
    }),
    Layer::MaxPool(PoolSpec {
        window: 3,
        stride: 2,
    }),
    Layer::Conv(ConvSpec {
        out_channels: 4,
        kernel: 3,
        stride: 1,
        padding: 1,
        groups: 2,
    }),
    Layer::Relu,
    Layer::Flatten,
    Layer::Linear { out_features: 3 },
    Layer::Dropout { p: 0.5 },
    Layer::Softmax,
];
const TINY: Arch<'static> = Arch {
    name: "tiny",
    input: Shape::new(1, 6, 6),
    layers: &TINY_LAYERS,
};
static ARENA: std::sync::Mutex<[u8; TINY.arena_bytes_f32()]> =
    std::sync::Mutex::new([0; TINY.arena_bytes_f32()]);

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/tiny.blob");

#[test]
fn the_writer_still_writes_the_checked_in_blob() {
    let bytes = alexnet_host::init::paper_init(&TINY, 42)
        .unwrap()
        .to_blob()
        .unwrap();
    if std::env::var_os("ALEXNET_BLESS").is_some() {
        std::fs::write(PATH, &bytes).unwrap();
    }
    let golden = std::fs::read(PATH).unwrap();
    assert!(
        bytes == golden,
        "the blob writer's output changed; if the format change is deliberate, bump the version and re-bless"
    );
}

#[test]
fn include_model_embeds_an_aligned_parseable_blob() {
    let blob: &'static [u8] = include_model!("data/tiny.blob");
    assert_eq!(blob.as_ptr() as usize % 64, 0);
    let model = Model::parse(blob).unwrap();
    assert_eq!(model.arch().layers, TINY.layers);
    let mut arena = ARENA.lock().unwrap();
    let mut logits = [0.0f32; 3];
    model
        .forward(&[1.0; 36], &mut arena[..], &mut logits)
        .unwrap();
    assert!(logits.iter().all(|v| v.is_finite()));
}
