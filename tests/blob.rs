//! The model blob: round trips, and a corpus of malformed blobs that must all be refused
//! with a clear error, never a panic.

use alexnet_core::builtin::{MICRO, PAPER};
use alexnet_core::model::format::{self, tag};
use alexnet_core::{ArchProblem, Error, Model, TensorRole};
use alexnet_host::init::paper_init;
use alexnet_host::{BlobFile, ModelSpec};

fn micro_blob() -> Vec<u8> {
    paper_init(&MICRO, 1).unwrap().to_blob().unwrap()
}

fn parse(bytes: &[u8]) -> Result<(), Error> {
    let file = BlobFile::from_bytes(bytes, "test");
    Model::parse(file.bytes()).map(|_| ())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Offset and length of a section.
fn section(b: &[u8], t: [u8; 4]) -> (usize, usize) {
    let n = u32_at(b, 20) as usize;
    (0..n)
        .map(|i| format::HEADER_BYTES + i * format::SECTION_ENTRY_BYTES)
        .find(|&at| b[at..at + 4] == t)
        .map(|at| (u32_at(b, at + 4) as usize, u32_at(b, at + 8) as usize))
        .unwrap()
}

/// Recomputes the header's CRC after a deliberate edit, so the edit reaches the validation
/// behind the checksum.
fn fix_crc(b: &mut [u8]) {
    let crc = crc32fast::hash(&b[format::HEADER_BYTES..]);
    set_u32(b, 16, crc);
}

/// Offset of the tensor-table entry for (layer, role).
fn tensor_entry(b: &[u8], layer: u32, role: u32) -> usize {
    let (tens, _) = section(b, tag::TENS);
    let count = u32_at(b, tens) as usize;
    (0..count)
        .map(|i| tens + 4 + i * format::TENSOR_ENTRY_BYTES)
        .find(|&at| u32_at(b, at) == layer && u32_at(b, at + 4) == role)
        .unwrap()
}

/// Where the first tensor's data starts: everything before it is header and tables.
fn metadata_end(b: &[u8]) -> usize {
    let (tens, _) = section(b, tag::TENS);
    u32_at(b, tens + 4 + 32) as usize
}

#[test]
fn round_trip_keeps_everything() {
    for arch in [&MICRO, &PAPER] {
        let spec = paper_init(arch, 3).unwrap();
        let blob = spec.to_blob().unwrap();
        let file = BlobFile::from_bytes(&blob, arch.name);
        let model = file.model().unwrap();
        assert_eq!(ModelSpec::from_model(&model), spec, "{}", arch.name);
        assert_eq!(model.arch().plan(), arch.plan());
        assert_eq!(model.labels().map(|l| l.len()), Some(arch.classes()));
        // Writing the parsed model again gives the same bytes.
        assert_eq!(ModelSpec::from_model(&model).to_blob().unwrap(), blob);
    }
}

#[test]
fn tensors_are_aligned_and_zero_copy() {
    let blob = micro_blob();
    let file = BlobFile::from_bytes(&blob, "micro");
    let model = file.model().unwrap();
    let base = file.bytes().as_ptr() as usize;
    for i in 0..model.layers().len() {
        if let Some(p) = model.params(i) {
            for t in [p.weight, p.bias] {
                let offset = t.as_ptr() as usize - base;
                assert_eq!(offset % format::TENSOR_ALIGN, 0, "layer {i}");
                assert!(offset + t.len() * 4 <= blob.len());
            }
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let blob = micro_blob();
    let meta = metadata_end(&blob);
    let lengths = (0..=meta).chain((meta..blob.len()).step_by(997));
    for len in lengths {
        match parse(&blob[..len]) {
            Err(Error::Truncated { .. } | Error::LengthMismatch { .. } | Error::BadMagic) => {}
            other => panic!("truncated to {len}: {other:?}"),
        }
    }
}

#[test]
fn every_flipped_header_byte_is_refused() {
    let blob = micro_blob();
    for at in 0..metadata_end(&blob) {
        let mut b = blob.clone();
        b[at] ^= 0xff;
        assert!(parse(&b).is_err(), "flipping byte {at} went unnoticed");
    }
}

#[test]
fn flips_behind_a_valid_crc_never_panic() {
    // Each byte of the header and tables flipped with the CRC recomputed: the structural
    // checks alone must catch what matters. A flip may still give a valid model (a different
    // LRN constant, say); then running it must not panic either.
    let blob = micro_blob();
    let mut refused = 0;
    let meta = metadata_end(&blob);
    for at in format::HEADER_BYTES..meta {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut b = blob.clone();
            b[at] ^= mask;
            fix_crc(&mut b);
            let file = BlobFile::from_bytes(&b, "flipped");
            match Model::parse(file.bytes()) {
                Err(_) => refused += 1,
                Ok(model) => {
                    let mut arena = vec![0u8; model.arena_bytes()];
                    let mut logits = vec![0.0; model.classes()];
                    let input = vec![0.5; model.input_len()];
                    model.forward(&input, &mut arena, &mut logits).unwrap();
                }
            }
        }
    }
    assert!(
        refused > (meta - format::HEADER_BYTES) * 2,
        "only {refused} refused"
    );
}

#[test]
fn header_errors_say_what_is_wrong() {
    let blob = micro_blob();
    let mut b = blob.clone();
    b[0] = b'X';
    assert_eq!(parse(&b), Err(Error::BadMagic));

    let mut b = blob.clone();
    let next = format::VERSION + 1;
    set_u32(&mut b, 8, next as u32 | (32 << 16));
    let newer = Error::UnsupportedVersion {
        found: next,
        newest_supported: format::VERSION,
    };
    assert_eq!(parse(&b), Err(newer));
    assert!(newer.to_string().contains("upgrade"));

    // Version 1 (f32 only) blobs are still read.
    let mut b = blob.clone();
    set_u32(&mut b, 8, 1 | (32 << 16));
    assert_eq!(parse(&b), Ok(()));

    let mut b = blob.clone();
    b.push(0);
    assert_eq!(
        parse(&b),
        Err(Error::LengthMismatch {
            header: blob.len(),
            actual: blob.len() + 1
        })
    );

    let mut b = blob.clone();
    let last = b.len() - 1;
    b[last] ^= 1;
    assert!(matches!(parse(&b), Err(Error::Checksum { .. })));
}

#[test]
fn a_misaligned_blob_is_refused_not_misread() {
    let blob = micro_blob();
    let mut storage = vec![0u64; blob.len() / 8 + 2];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut storage);
    bytes[1..1 + blob.len()].copy_from_slice(&blob);
    assert!(matches!(
        Model::parse(&bytes[1..1 + blob.len()]),
        Err(Error::Misaligned {
            what: "blob start",
            align: 4,
            ..
        })
    ));
}

#[test]
fn descriptor_errors_name_the_layer() {
    let blob = micro_blob();
    let (arch, _) = section(&blob, tag::ARCH);
    let record =
        |layer: usize, field: usize| arch + format::ARCH_HEADER_BYTES + layer * 32 + 4 * field;
    let cases: [(usize, usize, u32, usize, ArchProblem); 5] = [
        (0, 1, 0, 0, ArchProblem::ZeroDimension), // conv1 with 0 output channels
        (0, 2, 99, 0, ArchProblem::WindowLargerThanInput), // 99x99 kernel on 28x28
        (4, 5, 3, 4, ArchProblem::GroupsDoNotDivideChannels), // conv2 in 3 groups
        (2, 1, 4, 2, ArchProblem::BadLrnSize),    // LRN n = 4
        (0, 0, 77, 0, ArchProblem::UnknownLayerKind), // unknown kind code
    ];
    for (layer, field, value, at, problem) in cases {
        let mut b = blob.clone();
        set_u32(&mut b, record(layer, field), value);
        fix_crc(&mut b);
        assert_eq!(
            parse(&b),
            Err(Error::Arch(alexnet_core::ArchError { layer: at, problem })),
            "layer {layer} field {field} = {value}"
        );
    }
    // Absurd sizes overflow nothing: a 2^31-channel input is refused as too large.
    let mut b = blob.clone();
    set_u32(&mut b, arch + 16, 1 << 31);
    fix_crc(&mut b);
    assert!(
        matches!(parse(&b), Err(Error::Arch(_)) | Err(Error::BadField { .. })),
        "{:?}",
        parse(&b)
    );
}

#[test]
fn tensor_errors_name_the_tensor() {
    let blob = micro_blob();
    let conv1_weight = tensor_entry(&blob, 0, 0);

    let mut b = blob.clone();
    set_u32(&mut b, conv1_weight + 16, 16); // dims [16, 1, 3, 3] instead of [32, 1, 3, 3]
    set_u32(&mut b, conv1_weight + 36, 16 * 9 * 4);
    fix_crc(&mut b);
    let e = parse(&b).unwrap_err();
    assert_eq!(
        e,
        Error::TensorShape {
            layer: 0,
            role: TensorRole::Weight,
            expected: [32, 1, 3, 3],
            found: [16, 1, 3, 3]
        }
    );
    assert_eq!(
        e.to_string(),
        "layer 0 weight tensor has shape [16, 1, 3, 3], expected [32, 1, 3, 3]"
    );

    let mut b = blob.clone();
    set_u32(
        &mut b,
        conv1_weight + 32,
        (blob.len() as u32).next_multiple_of(64),
    ); // beyond the end
    fix_crc(&mut b);
    assert!(matches!(
        parse(&b),
        Err(Error::OutOfBounds {
            what: "tensor data",
            ..
        })
    ));

    let mut b = blob.clone();
    let off = u32_at(&b, conv1_weight + 32);
    set_u32(&mut b, conv1_weight + 32, off + 4); // misaligned
    fix_crc(&mut b);
    assert!(matches!(
        parse(&b),
        Err(Error::Misaligned {
            what: "tensor data",
            ..
        })
    ));

    let mut b = blob.clone();
    set_u32(&mut b, conv1_weight, 1); // conv1.weight claimed by the ReLU
    fix_crc(&mut b);
    assert_eq!(
        parse(&b),
        Err(Error::UnexpectedTensor { layer: 1, role: 0 })
    );

    let mut b = blob.clone();
    set_u32(&mut b, conv1_weight + 8, 7); // unknown dtype
    fix_crc(&mut b);
    assert_eq!(
        parse(&b),
        Err(Error::TensorDtype {
            layer: 0,
            role: TensorRole::Weight,
            found: 7
        })
    );

    // Drop the last table entry (the preprocessing std): the model misses a tensor.
    let mut b = blob.clone();
    let (tens, len) = section(&b, tag::TENS);
    let count = u32_at(&b, tens);
    set_u32(&mut b, tens, count - 1);
    let entry = (0..u32_at(&b, 20) as usize)
        .map(|i| format::HEADER_BYTES + i * format::SECTION_ENTRY_BYTES)
        .find(|&at| b[at..at + 4] == tag::TENS)
        .unwrap();
    set_u32(&mut b, entry + 8, (len - format::TENSOR_ENTRY_BYTES) as u32);
    fix_crc(&mut b);
    assert_eq!(
        parse(&b),
        Err(Error::MissingTensor {
            layer: usize::MAX,
            role: TensorRole::Std
        })
    );
}

#[test]
fn nan_weights_still_compute() {
    let mut spec = paper_init(&MICRO, 1).unwrap();
    spec.params[0].as_mut().unwrap().weight[0] = f32::NAN;
    let file = BlobFile::from_bytes(&spec.to_blob().unwrap(), "nan");
    let model = file.model().unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = [0.0; 10];
    model.forward(&[1.0; 784], &mut arena, &mut logits).unwrap();
    assert!(logits.iter().all(|v| v.is_nan()), "{logits:?}");
}

#[test]
fn caller_buffers_are_checked() {
    let blob = micro_blob();
    let file = BlobFile::from_bytes(&blob, "micro");
    let model = file.model().unwrap();
    let needed = model.arena_bytes();
    let mut logits = [0.0; 10];
    let input = [0.0; 784];
    let mut small = vec![0u8; needed - format::TENSOR_ALIGN];
    assert_eq!(
        model.forward(&input, &mut small, &mut logits),
        Err(Error::BufferTooSmall {
            what: "arena",
            needed,
            found: small.len()
        })
    );
    let mut arena = vec![0u8; needed];
    assert_eq!(
        model.forward(&input[..783], &mut arena, &mut logits),
        Err(Error::WrongLength {
            what: "input",
            expected: 784,
            found: 783
        })
    );
    assert_eq!(
        model.forward(&input, &mut arena, &mut logits[..9]),
        Err(Error::WrongLength {
            what: "logits",
            expected: 10,
            found: 9
        })
    );
    // Any alignment of an arena of arena_bytes() works.
    for skew in 0..8 {
        let mut buf = vec![0u8; needed + skew];
        model
            .forward(&input, &mut buf[skew..], &mut logits)
            .unwrap();
    }
}

/// NaN and infinite inputs are values, not failures: f32 inference propagates them (IEEE),
/// input quantization maps NaN to the zero point and the infinities to the code range's ends,
/// and int8 inference runs on the codes.
#[test]
fn nan_and_infinite_inputs_compute() {
    let blob = micro_blob();
    let file = BlobFile::from_bytes(&blob, "micro");
    let model = file.model().unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut logits = [0.0f32; 10];
    let mut input = [0.5f32; 784];
    input[0] = f32::NAN;
    input[1] = f32::INFINITY;
    assert_eq!(model.forward(&input, &mut arena, &mut logits), Ok(()));
    assert!(logits.iter().any(|v| !v.is_finite()), "{logits:?}");

    let int8 = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus/forward/tiny-int8.blob"),
    )
    .unwrap();
    let file = BlobFile::from_bytes(&int8, "tiny-int8");
    let model = file.model().unwrap();
    let n = model.arch().input_len();
    let mut x = vec![0.25f32; n];
    x[0] = f32::NAN;
    x[1] = f32::INFINITY;
    x[2] = f32::NEG_INFINITY;
    let mut codes = vec![0i8; n];
    assert_eq!(model.quantize_input(&x, &mut codes), Ok(()));
    let zero_point = model.quantization().input.zero_point;
    assert_eq!(&codes[..3], &[zero_point as i8, 127, -128]);
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut out = vec![0i8; model.classes()];
    assert_eq!(model.forward_int8(&codes, &mut arena, &mut out), Ok(()));
}

/// The micro net quantized on two real images; `packed`: with the DSP kernel's prepacked
/// weights.
fn micro_int8_blob(packed: bool) -> Vec<u8> {
    use alexnet_host::quantize::{self, Method};
    let spec = paper_init(&MICRO, 1).unwrap();
    let file = BlobFile::from_bytes(&spec.to_blob().unwrap(), "micro");
    let model = file.model().unwrap();
    let images = std::path::Path::new(alexnet_host::idx::FASHION_MNIST_DIR)
        .join("t10k-images-idx3-ubyte.gz");
    let inputs = alexnet_host::dataset::from_idx(&images, 2, model.preprocess(), MICRO.input)
        .unwrap()
        .inputs;
    let cal = quantize::calibrate(&model, &inputs, |_| {}).unwrap();
    let (mut int8, _) = quantize::quantize(&model, &cal, Method::MinMax).unwrap();
    int8.quant.as_mut().unwrap().packed_dsp = packed;
    int8.to_blob().unwrap()
}

#[test]
fn packed_dsp_weights_round_trip_as_version_3_and_only_then() {
    use alexnet_core::int8::packed::PackedGeometry;
    let plain = micro_int8_blob(false);
    assert_eq!(
        u32_at(&plain, 8) & 0xffff,
        2,
        "no packed weights: still version 2"
    );
    let packed = micro_int8_blob(true);
    assert_eq!(u32_at(&packed, 8) & 0xffff, 3);

    let file = BlobFile::from_bytes(&packed, "packed");
    let model = file.model().unwrap();
    let mut convs = 0;
    for step in MICRO.walk().map(Result::unwrap) {
        let kernel = model.quantization().layers[step.index].kernel;
        match step.layer {
            alexnet_core::Layer::Conv(spec) => {
                let kernel = kernel.unwrap();
                let geometry = PackedGeometry::new(&spec, step.input).unwrap();
                let expected: Vec<i16> = geometry.values(kernel.weight).collect();
                assert_eq!(
                    kernel.packed.unwrap(),
                    &expected[..],
                    "layer {}",
                    step.index
                );
                convs += 1;
            }
            _ => assert!(kernel.is_none_or(|k| k.packed.is_none())),
        }
    }
    assert_eq!(convs, 5);
    // Read back and written again: the same bytes.
    assert_eq!(ModelSpec::from_model(&model).to_blob().unwrap(), packed);
    // Without them, the same model minus role 7.
    let plain_file = BlobFile::from_bytes(&plain, "plain");
    let plain_model = plain_file.model().unwrap();
    assert!(plain_model.quantization().layers[0]
        .kernel
        .unwrap()
        .packed
        .is_none());
}

#[test]
fn packed_weights_that_differ_from_the_weights_are_refused() {
    let mut b = micro_int8_blob(true);
    let entry = tensor_entry(&b, 4, format::role::PACKED_WEIGHT);
    let data = u32_at(&b, entry + 32) as usize;
    b[data] ^= 1; // one packed weight off by one bit, behind a valid CRC
    fix_crc(&mut b);
    assert_eq!(
        parse(&b),
        Err(Error::BadQuantization {
            layer: 4,
            what: "the prepacked DSP weights are not the layer's weights in the packed layout",
        })
    );
}

#[test]
fn packed_weights_need_version_3_and_their_layout() {
    // A version-2 blob cannot carry role 7: an older reader would not know it.
    let mut b = micro_int8_blob(true);
    set_u32(&mut b, 8, 2 | (format::HEADER_BYTES as u32) << 16);
    fix_crc(&mut b);
    assert_eq!(
        parse(&b),
        Err(Error::UnexpectedTensor { layer: 0, role: 7 })
    );
    // The packed layout's dims, exactly.
    let mut b = micro_int8_blob(true);
    let entry = tensor_entry(&b, 0, format::role::PACKED_WEIGHT);
    let dims = [16, 8, 2, 2];
    assert_eq!(
        (0..4)
            .map(|i| u32_at(&b, entry + 16 + 4 * i))
            .collect::<Vec<_>>(),
        dims
    );
    set_u32(&mut b, entry + 16, 8);
    set_u32(&mut b, entry + 20, 16);
    fix_crc(&mut b);
    assert_eq!(
        parse(&b),
        Err(Error::TensorShape {
            layer: 0,
            role: TensorRole::PackedWeight,
            expected: dims,
            found: [8, 16, 2, 2],
        })
    );
    // Only on convolutions (here: on fc6).
    let mut b = micro_int8_blob(true);
    let entry = tensor_entry(&b, 0, format::role::PACKED_WEIGHT);
    set_u32(&mut b, entry, 16);
    fix_crc(&mut b);
    assert_eq!(
        parse(&b),
        Err(Error::UnexpectedTensor { layer: 16, role: 7 })
    );
}
