//! f32 weights from any file the tools read: a core blob, a safetensors file or a PyTorch
//! checkpoint. The format is told by the file's first bytes, never by its name, so a
//! misnamed file still loads and an unknown one is refused with what was found.

use crate::blob_file::BlobFile;
use crate::spec::ModelSpec;
use alexnet_core::model::format::MAGIC as BLOB_MAGIC;
use alexnet_core::{Arch, Precision};
use anyhow::{bail, ensure, Context, Result};
use std::fmt;
use std::io::Read;
use std::path::Path;

/// A weights file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The core's blob (`alexnet init`, `host-train`): carries its architecture.
    Blob,
    /// safetensors, with the names of [`crate::safetensors_io`].
    Safetensors,
    /// A `torch.save`d state_dict, zip or legacy format ([`crate::pth`]).
    PyTorch,
    /// An ONNX model ([`crate::onnx`]): its graph is the net.
    Onnx,
}

impl Format {
    /// Whether the file says which net it holds; the others need an architecture.
    pub fn names_its_arch(self) -> bool {
        matches!(self, Format::Blob | Format::Onnx)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Blob => "a core blob",
            Format::Safetensors => "a safetensors file",
            Format::PyTorch => "a PyTorch checkpoint",
            Format::Onnx => "an ONNX model",
        })
    }
}

/// torch.save's zip format: a zip local file header.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// torch.save's legacy format: a protocol-2 pickle of a 10-byte integer (torch's magic).
const LEGACY_PTH_MAGIC: &[u8] = b"\x80\x02\x8a\x0a";
/// The safetensors crate's bound on the JSON header's length.
const MAX_SAFETENSORS_HEADER: u64 = 100_000_000;
/// Bytes [`sniff`] needs to tell every format apart.
pub const SNIFF_BYTES: usize = 9;

/// The format of a file starting with `head`, `None` when it is none of them.
/// safetensors starts with its JSON header's length (u64, little-endian) and the header's `{`.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(&BLOB_MAGIC) {
        return Some(Format::Blob);
    }
    if head.starts_with(ZIP_MAGIC) || head.starts_with(LEGACY_PTH_MAGIC) {
        return Some(Format::PyTorch);
    }
    if looks_like_onnx(head) {
        return Some(Format::Onnx);
    }
    let len = u64::from_le_bytes(head.get(..8)?.try_into().ok()?);
    (head.get(8) == Some(&b'{') && (2..=MAX_SAFETENSORS_HEADER).contains(&len))
        .then_some(Format::Safetensors)
}

/// An ONNX `ModelProto` as every writer lays it out: field 1 (`ir_version`, a small varint)
/// first, then another of its fields (2 to 8: producer, domain, version, doc, graph, opsets).
fn looks_like_onnx(head: &[u8]) -> bool {
    matches!(head, [0x08, 1..=0x7f, next, ..] if (0x10..=0x47).contains(next))
}

/// The format of the file at `path`.
pub fn detect(path: &Path) -> Result<Format> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    std::fs::File::open(path)
        .and_then(|f| f.take(SNIFF_BYTES as u64).read_to_end(&mut head))
        .with_context(|| format!("cannot read {}", path.display()))?;
    if let Some(format) = sniff(&head) {
        return Ok(format);
    }
    ensure!(!head.is_empty(), "{} is empty", path.display());
    let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
    bail!(
        "{} is not a weights file: neither a core blob, a safetensors file, a PyTorch \
         checkpoint nor an ONNX model (its first bytes: {}{})",
        path.display(),
        hex.join(" "),
        if head.len() < SNIFF_BYTES {
            ", and nothing more"
        } else {
            ""
        }
    )
}

/// Reads f32 weights from `path`, whatever its format. `arch` is needed for the formats that
/// do not name their net; a blob, which does, must hold that net when one is given. Int8
/// blobs are refused: every caller needs f32 weights.
pub fn load(path: &Path, arch: Option<&Arch<'_>>) -> Result<ModelSpec> {
    match (detect(path)?, arch) {
        (Format::Blob, arch) => load_blob(path, arch),
        (Format::Safetensors, Some(arch)) => crate::safetensors_io::load(path, arch),
        (Format::PyTorch, Some(arch)) => crate::pth::load(path, arch),
        (Format::Onnx, arch) => crate::onnx::load(path, arch),
        (format, None) => bail!(
            "{} is {format}, which does not name its architecture: one must be given",
            path.display()
        ),
    }
}

fn load_blob(path: &Path, arch: Option<&Arch<'_>>) -> Result<ModelSpec> {
    let file = open_f32_blob(path, arch)?;
    Ok(ModelSpec::from_model(&file.model()?))
}

/// An f32 blob, mapped where it lies (its weights read in place, not copied): refused if it
/// is int8, or, with `arch`, another net.
pub fn open_f32_blob(path: &Path, arch: Option<&Arch<'_>>) -> Result<BlobFile> {
    let file = BlobFile::read(path)?;
    let model = file.model()?;
    ensure!(
        model.precision() == Precision::F32,
        "{} is already an int8 model: f32 weights are needed",
        path.display()
    );
    if let Some(arch) = arch {
        let ours = model.arch();
        ensure!(
            ours.layers == arch.layers && ours.input == arch.input,
            "{} holds a {} net, not {}",
            path.display(),
            ours.name,
            arch.name
        );
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alexnet_core::builtin::{MICRO, PAPER};

    /// One file of each format, all holding the same micro weights.
    fn files(dir: &Path) -> (ModelSpec, [(Format, std::path::PathBuf); 3]) {
        let spec = crate::init::paper_init(&MICRO, 5).unwrap();
        // Names that lie about the format: only the content counts.
        let blob = dir.join("weights.pth");
        crate::atomic::write_atomic(&blob, &spec.to_blob().unwrap()).unwrap();
        let st = dir.join("weights.blob");
        crate::safetensors_io::save(&spec, &st).unwrap();
        let pth = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/micro.pth");
        (
            spec,
            [
                (Format::Blob, blob),
                (Format::Safetensors, st),
                (Format::PyTorch, pth),
            ],
        )
    }

    #[test]
    fn each_format_is_told_by_its_content_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, files) = files(dir.path());
        for (format, path) in &files {
            assert_eq!(detect(path).unwrap(), *format, "{}", path.display());
            let loaded = load(path, Some(&MICRO)).unwrap();
            assert_eq!(loaded.layers, MICRO.layers);
            if *format != Format::PyTorch {
                assert_eq!(loaded, spec, "{format}");
            }
        }
        // torch.save's legacy format too.
        let legacy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/micro_legacy.pth");
        assert_eq!(detect(&legacy).unwrap(), Format::PyTorch);
        assert_eq!(
            load(&legacy, Some(&MICRO)).unwrap().params,
            load(&files[2].1, Some(&MICRO)).unwrap().params
        );
        assert_eq!(
            sniff(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9"),
            Some(Format::PyTorch)
        );
    }

    #[test]
    fn onnx_models_are_told_and_name_their_net() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/onnx/micro.onnx");
        assert_eq!(detect(&path).unwrap(), Format::Onnx);
        assert_eq!(load(&path, None).unwrap().name, "micro");
        let e = format!("{:#}", load(&path, Some(&PAPER)).unwrap_err());
        assert!(e.contains("is not the paper net"), "{e}");
    }

    #[test]
    fn the_arch_is_needed_or_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, [(_, blob), (_, st), (_, pth)]) = files(dir.path());
        assert_eq!(load(&blob, None).unwrap(), spec);
        for (path, kind) in [(&st, "a safetensors file"), (&pth, "a PyTorch checkpoint")] {
            let e = load(path, None).unwrap_err().to_string();
            assert!(
                e.contains(&format!("is {kind}, which does not name its architecture")),
                "{e}"
            );
        }
        let e = format!("{:#}", load(&blob, Some(&PAPER)).unwrap_err());
        assert!(e.contains("holds a micro net, not paper"), "{e}");
        let e = format!("{:#}", load(&st, Some(&PAPER)).unwrap_err());
        assert!(e.contains("tensor conv1.weight has shape"), "{e}");
    }

    #[test]
    fn int8_blobs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let int8 = crate::quantize::test_support::quantized_micro(1).int8_blob;
        let path = dir.path().join("q.blob");
        crate::atomic::write_atomic(&path, int8.bytes()).unwrap();
        assert_eq!(detect(&path).unwrap(), Format::Blob);
        let e = load(&path, None).unwrap_err().to_string();
        assert!(e.contains("is already an int8 model"), "{e}");
    }

    #[test]
    fn unknown_empty_and_truncated_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let e = detect(&write("text", b"hello, world"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is not a weights file")
                && e.contains("its first bytes: 68 65 6c 6c 6f 2c 20 77 6f)"),
            "{e}"
        );
        let e = detect(&write("empty", b"")).unwrap_err().to_string();
        assert!(e.ends_with("empty is empty"), "{e}");
        let e = detect(&write("short", b"AL")).unwrap_err().to_string();
        assert!(e.contains("41 4c, and nothing more"), "{e}");
        let e = detect(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("cannot read"), "{e}");

        // Truncated after the magic: the format's own reader says what is wrong.
        let (spec, _) = files(dir.path());
        let blob = spec.to_blob().unwrap();
        let cut = write("cut.blob", &blob[..blob.len() / 2]);
        assert_eq!(detect(&cut).unwrap(), Format::Blob);
        let e = format!("{:#}", load(&cut, None).unwrap_err());
        assert!(e.contains("invalid model blob"), "{e}");
        let st = std::fs::read(dir.path().join("weights.blob")).unwrap();
        let cut = write("cut.safetensors", &st[..st.len() / 2]);
        assert_eq!(detect(&cut).unwrap(), Format::Safetensors);
        let e = format!("{:#}", load(&cut, Some(&MICRO)).unwrap_err());
        assert!(e.contains("not a safetensors file"), "{e}");
        let pth = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/micro.pth"))
            .unwrap();
        let cut = write("cut.pth", &pth[..pth.len() / 2]);
        assert_eq!(detect(&cut).unwrap(), Format::PyTorch);
        assert!(load(&cut, Some(&MICRO)).is_err());
    }
}
