//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs` call these under libFuzzer;
//! `tests/fuzz_corpus.rs` replays the checked-in corpus through them on stable Rust in every
//! `cargo xtask test`). Each must return, never panic, whatever the bytes.

use alexnet_core::{builtin, Model};
use alexnet_host::BlobFile;
use std::path::Path;

/// Sets a blob's length and CRC fields to match `data`, so that mutations reach the
/// structural validation behind the checksum instead of stopping at it.
pub fn with_valid_crc(data: &[u8]) -> Vec<u8> {
    let mut blob = data.to_vec();
    if blob.len() >= 20 {
        let len = (blob.len() as u32).to_le_bytes();
        blob[12..16].copy_from_slice(&len);
        let crc =
            crc32fast::hash(&blob[alexnet_core::model::format::HEADER_BYTES.min(blob.len())..]);
        blob[16..20].copy_from_slice(&crc.to_le_bytes());
    }
    blob
}

/// Parses `data` as a blob, raw and with a valid checksum.
pub fn blob(data: &[u8]) {
    for bytes in [data.to_vec(), with_valid_crc(data)] {
        // Aligned as a blob in flash would be.
        let file = BlobFile::from_bytes(&bytes, "fuzz");
        if let Ok(model) = Model::parse(file.bytes()) {
            let _ = (model.arena_bytes(), model.classes(), model.arch().name);
            let _ = model.labels().map(|l| l.len());
        }
    }
}

/// Largest arena and input the forward target allocates (keeps each run fast).
const LIMIT: usize = 1 << 20;

/// Parses `data` (checksum fixed up) and, when it is a model, runs it in f32 and int8 on an
/// input drawn from the data itself, with a right-sized arena and with a too-small one.
pub fn forward(data: &[u8]) {
    let file = BlobFile::from_bytes(&with_valid_crc(data), "fuzz");
    let Ok(model) = Model::parse(file.bytes()) else {
        return;
    };
    let (n_in, classes, arena_len) = (
        model.arch().input_len(),
        model.classes(),
        model.arena_bytes(),
    );
    if n_in > LIMIT || arena_len > LIMIT || classes > LIMIT {
        return;
    }
    let input: Vec<f32> = (0..n_in)
        .map(|i| {
            data.get(i % data.len().max(1))
                .map_or(0.0, |&b| b as f32 / 16.0 - 8.0)
        })
        .collect();
    let codes: Vec<i8> = (0..n_in)
        .map(|i| data.get(i % data.len().max(1)).map_or(0, |&b| b as i8))
        .collect();
    let mut arena = vec![0u8; arena_len];
    let mut logits = vec![0.0f32; classes];
    let mut qlogits = vec![0i8; classes];
    let _ = model.forward(&input, &mut arena, &mut logits);
    let _ = model.forward_int8(&codes, &mut arena, &mut qlogits);
    let mut quantized = vec![0i8; n_in];
    let _ = model.quantize_input(&input, &mut quantized);
    let _ = model.dequantize_logits(&qlogits, &mut logits);
    let mut small = vec![0u8; arena_len / 2];
    let _ = model.forward(&input, &mut small, &mut logits);
    let _ = model.forward_int8(&codes, &mut small, &mut qlogits);
    let mut best = [0usize; 5];
    alexnet_core::postprocess::top_k(&logits, &mut best);
}

/// The quantizer's safetensors reader, against the micro and paper nets.
pub fn safetensors(data: &[u8]) {
    for arch in [&builtin::MICRO, &builtin::PAPER] {
        let _ = alexnet_host::safetensors_io::from_bytes(data, arch, Path::new("fuzz"));
    }
}

/// The IDX readers.
pub fn idx(data: &[u8]) {
    let _ = alexnet_host::idx::parse_images(data, Path::new("fuzz"));
    let _ = alexnet_host::idx::parse_labels(data, Path::new("fuzz"));
}

/// The PyTorch checkpoint reader.
pub fn pth(data: &[u8]) {
    let _ = alexnet_host::pth::parse_state_dict(data);
}

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target by name (the corpus folders are named after them).
pub const TARGETS: [(&str, Target); 5] = [
    ("blob", blob),
    ("forward", forward),
    ("safetensors", safetensors),
    ("idx", idx),
    ("pth", pth),
];
