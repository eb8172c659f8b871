//! PyTorch checkpoints (`torch.save`d state_dicts, `.pth` / `.pt`) read natively, without
//! Python: torchvision's `alexnet-owt-7be5be79.pth` or your own fine-tuned weights.
//!
//! Both formats `torch.save` writes are read: the zip format (`zip_format`, the default
//! since torch 1.6) and the legacy format (`legacy`). Their pickles are run by a small,
//! bounded pickle machine (`pickle`) that knows only what `torch.save` emits for a
//! state_dict (`torch`: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` /
//! `_v3`, `_rebuild_parameter`, `torch._tensor._rebuild_from_type_v2`, typed and untyped
//! storages); it never imports or executes anything, so a hostile file can do no more than
//! fail to load. The state_dict is found in the unpickled object (`state_dict`: also one
//! nested in a training checkpoint, `{"state_dict": ..., "epoch": ...}`, `"model"`, ...),
//! then each tensor is rebuilt from its storage (`rebuild`): offsets and strides are
//! honoured, so views and transposed tensors come out as torch sees them, and float16,
//! bfloat16, float64 and the integer types are converted to f32 (`dtype`).
//!
//! Every malformed input is an error naming the file (and the tensor when known), never a
//! panic; no storage larger than the file is believed, and the tensors together may not hold
//! more values than the file has bytes (or 2^26, whichever is larger), so memory stays bounded.

mod dtype;
mod legacy;
mod pickle;
mod rebuild;
mod state_dict;
#[cfg(test)]
mod test_support;
mod torch;
mod zip_format;

use crate::safetensors_io::spec_from_tensors;
use crate::spec::ModelSpec;
use alexnet_core::Arch;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;

/// One tensor of a state_dict, converted to f32 and laid out contiguously (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// The state_dict key, e.g. `features.0.weight`.
    pub name: String,
    /// torch's `tensor.shape`; empty for a 0-dimensional tensor.
    pub shape: Vec<usize>,
    /// The values in row-major order, `shape.iter().product()` of them.
    pub values: Vec<f32>,
}

/// Reads every tensor of the state_dict in a PyTorch checkpoint, in the file's order.
pub fn read_state_dict(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&bytes).map_err(|e| anyhow!("{}: {e:#}", path.display()))
}

/// The state_dict of a checkpoint's bytes (for callers that hold the file already, and the
/// fuzzer).
pub fn parse_state_dict(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    parse(bytes)
}

/// Reads f32 weights for `arch` from a PyTorch checkpoint, with the names, shape checks and
/// NaN/Inf checks of [`crate::safetensors_io::load`] (torchvision's state_dict names for the
/// `torchvision` net, `conv1.weight` ... `fc8.bias` otherwise); preprocessing and labels are
/// the architecture's defaults.
pub fn load(path: &Path, arch: &Arch<'_>) -> Result<ModelSpec> {
    spec_from_state_dict(path, arch, read_state_dict(path)?)
}

fn spec_from_state_dict(
    path: &Path,
    arch: &Arch<'_>,
    tensors: Vec<NamedTensor>,
) -> Result<ModelSpec> {
    let mut by_name: HashMap<String, NamedTensor> =
        tensors.into_iter().map(|t| (t.name.clone(), t)).collect();
    spec_from_tensors(path, arch, |name| {
        by_name.remove(name).map(|t| (t.shape, Ok(t.values)))
    })
}

/// Parses a checkpoint held in memory, in whichever format its first bytes announce; errors
/// do not name the file (the callers add it).
fn parse(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    if bytes.starts_with(zip_format::MAGIC) {
        zip_format::parse(bytes)
    } else if bytes.starts_with(legacy::MAGIC) {
        legacy::parse(bytes)
    } else {
        bail!("not a PyTorch checkpoint (neither torch.save's zip format nor its legacy format)")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{assert_errors, data, read, write_spec};
    use super::*;
    use alexnet_core::builtin::{MICRO, PAPER, TORCHVISION};
    use rand::{Rng, SeedableRng};
    use safetensors::tensor::{Dtype as StDtype, SafeTensors};
    use std::io::Read;

    fn gunzip(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&read(name)[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// The expected tensors the generator wrote with the `safetensors` package, in its order
    /// (safetensors sorts names, so the order is only used for lookups).
    fn expected(bytes: &[u8]) -> HashMap<String, (Vec<usize>, Vec<u32>)> {
        let st = SafeTensors::deserialize(bytes).unwrap();
        st.tensors()
            .into_iter()
            .map(|(name, t)| {
                let bits = match t.dtype() {
                    StDtype::F32 => t
                        .data()
                        .chunks_exact(4)
                        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                        .collect(),
                    // Indices (tv_nested's `.idx`), kept as u32 (they are small).
                    StDtype::I64 => t
                        .data()
                        .chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32)
                        .collect(),
                    d => panic!("unexpected dtype {d:?}"),
                };
                (name, (t.shape().to_vec(), bits))
            })
            .collect()
    }

    fn assert_matches(got: &[NamedTensor], want: &HashMap<String, (Vec<usize>, Vec<u32>)>) {
        assert_eq!(got.len(), want.len());
        for t in got {
            let (shape, bits) = &want[&t.name];
            assert_eq!(&t.shape, shape, "{}", t.name);
            let got_bits: Vec<u32> = t.values.iter().map(|v| v.to_bits()).collect();
            assert_eq!(&got_bits, bits, "{} differs from torch", t.name);
        }
    }

    const MICRO_NAMES: [&str; 16] = [
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
        "conv2.bias",
        "conv3.weight",
        "conv3.bias",
        "conv4.weight",
        "conv4.bias",
        "conv5.weight",
        "conv5.bias",
        "fc6.weight",
        "fc6.bias",
        "fc7.weight",
        "fc7.bias",
        "fc8.weight",
        "fc8.bias",
    ];

    #[test]
    fn micro_zip_and_legacy_match_torch_bit_for_bit() {
        let want = expected(&gunzip("micro_expected.safetensors.gz"));
        for file in ["micro.pth", "micro_legacy.pth"] {
            let got = read_state_dict(&data(file)).unwrap();
            let names: Vec<&str> = got.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, MICRO_NAMES, "{file}: the file's order");
            assert_matches(&got, &want);
        }
    }

    #[test]
    fn generic_dtypes_views_and_strides_match_torch() {
        let want = expected(&read("generic_expected.safetensors"));
        let got = read_state_dict(&data("generic.pth")).unwrap();
        let names: Vec<&str> = got.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "f32",
                "f16",
                "bf16",
                "f64",
                "transposed",
                "offset_a",
                "offset_b",
                "expanded",
                "param",
                "scalar",
                "empty"
            ]
        );
        assert_matches(&got, &want);
        let scalar = got.iter().find(|t| t.name == "scalar").unwrap();
        assert_eq!(
            (scalar.shape.as_slice(), scalar.values.as_slice()),
            (&[][..], &[2.5f32][..])
        );
    }

    #[test]
    fn load_micro_equals_the_safetensors_load() {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("micro.safetensors");
        std::fs::write(&st, gunzip("micro_expected.safetensors.gz")).unwrap();
        let reference = crate::safetensors_io::load(&st, &MICRO).unwrap();
        for file in ["micro.pth", "micro_legacy.pth"] {
            assert_eq!(load(&data(file), &MICRO).unwrap(), reference, "{file}");
        }
        // The same names and checks as safetensors: a micro file is no paper net.
        let e = load(&data("micro.pth"), &PAPER).unwrap_err().to_string();
        assert!(
            e.contains(
                "micro.pth: tensor conv1.weight has shape [32, 1, 3, 3], expected [96, 3, 11, 11]"
            ),
            "{e}"
        );
    }

    #[test]
    fn nested_torchvision_checkpoint_loads_as_torchvision() {
        let path = data("tv_nested.pth");
        let got = read_state_dict(&path).unwrap();
        let names: Vec<&str> = got.iter().map(|t| t.name.as_str()).collect();
        let stems: Vec<String> = (0..TORCHVISION.layers.len())
            .filter_map(|i| crate::safetensors_io::tensor_stem(&TORCHVISION, i))
            .flat_map(|s| [format!("{s}.weight"), format!("{s}.bias")])
            .collect();
        assert_eq!(names, stems);
        let want = expected(&read("tv_nested_expected.safetensors"));
        for t in &got {
            let (_, idx) = &want[&format!("{}.idx", t.name)];
            let (_, bits) = &want[&t.name];
            let sampled: Vec<u32> = idx
                .iter()
                .map(|&i| t.values[i as usize].to_bits())
                .collect();
            assert_eq!(&sampled, bits, "{}", t.name);
        }
        let spec = spec_from_state_dict(&path, &TORCHVISION, got).unwrap();
        assert_eq!(spec.name, "torchvision");
        assert_eq!(
            spec.params[0].as_ref().unwrap().weight.len(),
            64 * 3 * 11 * 11
        );
    }

    #[test]
    fn written_checkpoint_round_trips_and_load_checks_names_shapes_and_nan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.pth");
        let spec = crate::init::paper_init(&MICRO, 3).unwrap();
        std::fs::write(&path, write_spec(&spec)).unwrap();
        assert_eq!(load(&path, &MICRO).unwrap(), spec);

        let mut nan = spec.clone();
        nan.params[4].as_mut().unwrap().weight[5] = f32::NAN;
        std::fs::write(&path, write_spec(&nan)).unwrap();
        let e = load(&path, &MICRO).unwrap_err().to_string();
        assert!(e.contains("w.pth: tensor conv2.weight holds 1 NaN"), "{e}");

        let mut missing = spec.clone();
        missing.params[22] = None;
        std::fs::write(&path, write_spec(&missing)).unwrap();
        let e = load(&path, &MICRO).unwrap_err().to_string();
        assert!(e.contains("w.pth: tensor fc8.weight is missing"), "{e}");
    }

    #[test]
    fn neither_format_is_refused() {
        assert_errors(vec![
            (b"garbage".to_vec(), &["not a PyTorch checkpoint"]),
            (Vec::new(), &["not a PyTorch checkpoint"]),
        ]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for file in [
            "generic.pth",
            "micro.pth",
            "micro_legacy.pth",
            "tv_nested.pth",
        ] {
            let bytes = read(file);
            // (tv_nested.pth reads whole in nested_torchvision_checkpoint_loads_as_torchvision;
            // its 61 M values take seconds in a debug build.)
            if file != "tv_nested.pth" {
                assert!(parse(&bytes).is_ok());
            }
            for n in 0..bytes.len() {
                assert!(
                    parse(&bytes[..n]).is_err(),
                    "{file} cut to {n} bytes was read"
                );
            }
        }
    }

    #[test]
    fn random_byte_flips_never_panic() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for file in ["generic.pth", "micro.pth", "micro_legacy.pth"] {
            let bytes = read(file);
            let good = parse(&bytes).unwrap();
            let zip = bytes.starts_with(zip_format::MAGIC);
            let mut errors = 0;
            for _ in 0..400 {
                let mut b = bytes.clone();
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..b.len());
                    b[i] ^= rng.random_range(1..=255u8);
                }
                match parse(&b) {
                    Err(_) => errors += 1,
                    // The zip format checksums everything read: what still reads is intact.
                    Ok(t) if zip => assert!(t == good, "{file}: a flip changed the tensors"),
                    // The legacy format has no checksum: a flip in a storage changes values.
                    Ok(_) => {}
                }
            }
            assert!(errors > 0, "{file}: no flip was noticed");
        }
    }
}
