//! Weights as safetensors: torchvision's state_dict names for the torchvision net, the
//! conventional `conv1.weight` ... `fc8.bias` for the others (`docs/architectures.md`).

use crate::profile::{self, TensorNames};
use crate::spec::{LayerParams, ModelSpec};
use alexnet_core::Arch;
use anyhow::{ensure, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::path::Path;

/// The safetensors name stem of parameterized layer `i`: the naming of `arch`'s profile
/// ([`crate::profile::TensorNames`]; `features.3` for torchvision's conv2), `conv2` for a net
/// that is not built in.
pub fn tensor_stem(arch: &Arch<'_>, i: usize) -> Option<String> {
    profile::of(arch)
        .map_or(TensorNames::Layer, |p| p.tensor_names)
        .stem(arch, i)
}

/// The weight tensor's shape, as safetensors stores it (no trailing zeros).
fn weight_shape(step: &alexnet_core::arch::Step) -> Vec<usize> {
    let dims = step.layer.weight_dims(step.input);
    dims.iter()
        .filter(|&&d| d != 0)
        .map(|&d| d as usize)
        .collect()
}

/// Reads f32 weights for `arch` from a safetensors file; preprocessing and labels are the
/// architecture's defaults. Every error names the tensor.
pub fn load(path: impl AsRef<Path>, arch: &Arch<'_>) -> Result<ModelSpec> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    from_bytes(&bytes, arch, path)
}

/// [`load`] on a file's bytes; `path` names it in errors.
pub fn from_bytes(bytes: &[u8], arch: &Arch<'_>, path: &Path) -> Result<ModelSpec> {
    let tensors = SafeTensors::deserialize(bytes)
        .with_context(|| format!("{} is not a safetensors file", path.display()))?;
    spec_from_tensors(path, arch, |name| {
        let t = tensors.tensor(name).ok()?;
        let values = if t.dtype() == Dtype::F32 {
            Ok(t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        } else {
            Err(anyhow::anyhow!(
                "{}: tensor {name} is {:?}; f32 is needed",
                path.display(),
                t.dtype()
            ))
        };
        Some((t.shape().to_vec(), values))
    })
}

/// Builds an f32 [`ModelSpec`] for `arch` from named tensors, whatever file they came from
/// (safetensors here, PyTorch checkpoints in [`crate::pth`]): `lookup(name)` gives a tensor's
/// shape and its values (or why they cannot be read), `None` when the file lacks it. Names are
/// [`tensor_stem`]`.weight` and `.bias`; every shape is checked against the architecture
/// before the values are used, and NaN or infinite values are refused. Errors start with
/// `path` and name the tensor. Preprocessing and labels are the architecture's defaults.
pub(crate) fn spec_from_tensors(
    path: &Path,
    arch: &Arch<'_>,
    mut lookup: impl FnMut(&str) -> Option<(Vec<usize>, Result<Vec<f32>>)>,
) -> Result<ModelSpec> {
    let mut params = Vec::with_capacity(arch.layers.len());
    for step in arch.walk() {
        let step = step.map_err(|e| anyhow::anyhow!("{}", alexnet_core::Error::Arch(e)))?;
        let Some(stem) = tensor_stem(arch, step.index) else {
            params.push(None);
            continue;
        };
        let mut read = |suffix: &str, dims: &[usize]| -> Result<Vec<f32>> {
            let name = format!("{stem}.{suffix}");
            let (shape, values) = lookup(&name).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: tensor {name} is missing (expected shape {dims:?})",
                    path.display()
                )
            })?;
            ensure!(
                shape == dims,
                "{}: tensor {name} has shape {shape:?}, expected {dims:?}",
                path.display(),
            );
            let values = values?;
            let expected: usize = dims.iter().product();
            ensure!(
                values.len() == expected,
                "{}: tensor {name} holds {} values, expected {expected}",
                path.display(),
                values.len()
            );
            let bad = values.iter().filter(|v| !v.is_finite()).count();
            ensure!(
                bad == 0,
                "{}: tensor {name} holds {bad} NaN or infinite values",
                path.display()
            );
            Ok(values)
        };
        let wd = weight_shape(&step);
        let weight = read("weight", &wd)?;
        let bias = read("bias", &[step.layer.bias_len()])?;
        params.push(Some(LayerParams { weight, bias }));
    }
    Ok(ModelSpec::with_defaults(arch, params))
}

/// Writes an f32 spec's weights as safetensors with the names [`load`] reads, atomically.
pub fn save(spec: &ModelSpec, path: impl AsRef<Path>) -> Result<()> {
    let arch = spec.arch();
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for step in arch.walk() {
        let step = step.map_err(|e| anyhow::anyhow!("{}", alexnet_core::Error::Arch(e)))?;
        let (Some(stem), Some(p)) = (
            tensor_stem(&arch, step.index),
            spec.params[step.index].as_ref(),
        ) else {
            continue;
        };
        let wd = weight_shape(&step);
        owned.push((
            format!("{stem}.weight"),
            wd,
            bytemuck::cast_slice(&p.weight).to_vec(),
        ));
        owned.push((
            format!("{stem}.bias"),
            vec![p.bias.len()],
            bytemuck::cast_slice(&p.bias).to_vec(),
        ));
    }
    let views = owned
        .iter()
        .map(|(n, shape, data)| Ok((n.clone(), TensorView::new(Dtype::F32, shape.clone(), data)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let bytes = safetensors::serialize(views, None)?;
    crate::atomic::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alexnet_core::builtin::{MICRO, TORCHVISION};

    #[test]
    fn names_follow_the_profile() {
        let stem = |arch, i| tensor_stem(arch, i).unwrap();
        assert_eq!(stem(&TORCHVISION, 3), "features.3");
        assert_eq!(stem(&TORCHVISION, 21), "classifier.6");
        assert_eq!(stem(&MICRO, 4), "conv2");
    }

    #[test]
    fn round_trip_and_errors_name_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let spec = crate::init::paper_init(&MICRO, 2).unwrap();
        let path = dir.path().join("w.safetensors");
        save(&spec, &path).unwrap();
        assert_eq!(load(&path, &MICRO).unwrap(), spec);

        // Wrong shape: a micro file read as the paper net.
        let e = load(&path, &alexnet_core::builtin::PAPER)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tensor conv1.weight has shape [32, 1, 3, 3], expected [96, 3, 11, 11]"),
            "{e}"
        );

        // Missing tensor and NaN.
        let mut broken = spec.clone();
        broken.params[22] = None;
        save(&broken, &path).unwrap();
        let e = load(&path, &MICRO).unwrap_err().to_string();
        assert!(e.contains("tensor fc8.weight is missing"), "{e}");
        let mut nan = spec.clone();
        nan.params[4].as_mut().unwrap().weight[5] = f32::NAN;
        save(&nan, &path).unwrap();
        let e = load(&path, &MICRO).unwrap_err().to_string();
        assert!(e.contains("tensor conv2.weight holds 1 NaN"), "{e}");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(load(&path, &MICRO)
            .unwrap_err()
            .to_string()
            .contains("not a safetensors file"));
    }
}
