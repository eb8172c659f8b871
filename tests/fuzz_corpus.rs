//! Replays the fuzz corpus (`fuzz/corpus/<target>/`: the seeds and every input libFuzzer
//! kept for new coverage) through the targets' bodies on stable Rust: a crash libFuzzer once
//! found, or one a change brings back, fails here without a fuzzing toolchain.

use alexnet_tests::fuzz::TARGETS;
use std::path::Path;

#[test]
fn corpus_replays_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut total = 0;
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no corpus", dir.display());
        for f in &files {
            let data = std::fs::read(f).unwrap();
            target(&data);
        }
        eprintln!("{name}: {} inputs", files.len());
        total += files.len();
    }
    assert!(total > 0);
}

/// The forward target's seeds (named; libFuzzer names what it adds by hash) are real models,
/// so the replay runs inference, not just the parser's refusals.
#[test]
fn forward_seeds_are_models() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/forward");
    for name in ["tiny-f32.blob", "tiny-int8.blob"] {
        let data = std::fs::read(dir.join(name)).unwrap();
        let file =
            alexnet_host::BlobFile::from_bytes(&alexnet_tests::fuzz::with_valid_crc(&data), name);
        file.model().unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
}
