//! The rebuild step: each tensor of the state_dict read from its storage's bytes, through
//! its offset, shape and strides, converted to f32 and laid out row-major.

use super::dtype::Dtype;
use super::pickle::{Obj, Vm};
use super::NamedTensor;
use anyhow::{bail, ensure, Context, Result};
use std::collections::HashMap;

/// Where [`materialize`] finds a storage's bytes: the zip archive's `data/` entries or the
/// legacy file's tail.
pub(super) trait StorageSource {
    /// The bytes of storage `key`.
    fn get(&mut self, key: &str) -> Result<&[u8]>;
    /// No tensor needs `key` any more.
    fn release(&mut self, _key: &str) {}
}

/// Reads each tensor's values from its storage; `entries` are the state_dict's (name,
/// tensor object) pairs. The values of all tensors together are bounded by the file's
/// length (or 2^26, whichever is larger), so a small file cannot claim gigabytes.
pub(super) fn materialize(
    vm: &Vm,
    entries: &[(String, usize)],
    file_len: usize,
    source: &mut dyn StorageSource,
) -> Result<Vec<NamedTensor>> {
    let budget = file_len.max(1 << 26);
    // How many tensors still need each storage, so a storage is dropped after its last one.
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (_, t) in entries {
        if let Some(Obj::Tensor(meta)) = vm.objs.get(*t) {
            if let Ok(layout) = vm.layout(meta) {
                *uses
                    .entry(vm.storages[layout.storage].key.as_str())
                    .or_default() += 1;
            }
        }
    }
    let mut total = 0usize;
    let mut out = Vec::with_capacity(entries.len());
    for (name, t) in entries {
        let tensor = (|| -> Result<NamedTensor> {
            let Some(Obj::Tensor(meta)) = vm.objs.get(*t) else {
                bail!("not a tensor");
            };
            let layout = vm.layout(meta)?;
            let decl = &vm.storages[layout.storage];
            let dtype = match (layout.dtype, &decl.dtype) {
                (Some(d), _) => d,
                (None, Ok(d)) => *d,
                (None, Err(what)) => bail!("its storage type {what} is not supported"),
            };
            decl.numel
                .checked_mul(decl.element_size() as u64)
                .filter(|&n| n <= file_len as u64)
                .with_context(|| {
                    format!(
                        "its storage {:?} declares {} elements, more than the file's \
                         {file_len} bytes hold",
                        decl.key, decl.numel
                    )
                })?;
            let numel = layout
                .shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .with_context(|| format!("its shape {:?} overflows", layout.shape))?;
            total = total
                .checked_add(numel)
                .filter(|&t| t <= budget)
                .with_context(|| {
                    format!(
                        "the tensors hold more than {budget} values, more than a file of \
                         {file_len} bytes can describe"
                    )
                })?;
            if numel == 0 {
                return Ok(NamedTensor {
                    name: name.clone(),
                    shape: layout.shape,
                    values: Vec::new(),
                });
            }
            // One past the last byte this view reaches.
            let end = layout
                .shape
                .iter()
                .zip(&layout.stride)
                .try_fold(layout.offset, |a, (&d, &s)| {
                    (d - 1).checked_mul(s).and_then(|x| a.checked_add(x))
                })
                .and_then(|l| l.checked_add(1))
                .and_then(|l| l.checked_mul(dtype.size()))
                .with_context(|| {
                    format!(
                        "its shape {:?}, strides {:?} and offset {} overflow",
                        layout.shape, layout.stride, layout.offset
                    )
                })?;
            let bytes = source.get(&decl.key)?;
            ensure!(
                end <= bytes.len(),
                "shape {:?} with strides {:?} and offset {} reaches outside its storage {:?} \
                 ({} bytes needed, {} present)",
                layout.shape,
                layout.stride,
                layout.offset,
                decl.key,
                end,
                bytes.len()
            );
            let values = gather(bytes, dtype, layout.offset, &layout.shape, &layout.stride);
            if let Some(n) = uses.get_mut(decl.key.as_str()) {
                *n -= 1;
                if *n == 0 {
                    source.release(&decl.key);
                }
            }
            Ok(NamedTensor {
                name: name.clone(),
                values,
                shape: layout.shape,
            })
        })()
        .with_context(|| format!("tensor {name}"))?;
        out.push(tensor);
    }
    Ok(out)
}

/// The values of a strided view, row-major. The caller has checked that every element lies
/// inside `bytes`.
fn gather(
    bytes: &[u8],
    dtype: Dtype,
    offset: usize,
    shape: &[usize],
    stride: &[usize],
) -> Vec<f32> {
    let es = dtype.size();
    let numel: usize = shape.iter().product();
    let mut out = Vec::with_capacity(numel);
    let read = |i: usize| -> f32 {
        bytes
            .get(i * es..i * es + es)
            .map_or(f32::NAN, |b| dtype.decode(b))
    };
    let Some((&inner, outer)) = shape.split_last() else {
        out.push(read(offset));
        return out;
    };
    let inner_stride = stride[stride.len() - 1];
    let mut index = vec![0usize; outer.len()];
    let mut base = offset;
    loop {
        // The common case, a contiguous f32 row, copied without per-element dispatch.
        let contiguous = (inner_stride == 1 && dtype == Dtype::F32)
            .then(|| bytes.get(base * 4..(base + inner) * 4))
            .flatten();
        if let Some(run) = contiguous {
            out.extend(
                run.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        } else {
            out.extend((0..inner).map(|j| read(base + j * inner_stride)));
        }
        // Next outer index, last dimension fastest.
        let mut d = outer.len();
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            index[d] += 1;
            base += stride[d];
            if index[d] < outer[d] {
                break;
            }
            base -= stride[d] * outer[d];
            index[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{archive, assert_errors, f32_bytes, pickle, tensor, Item};
    use super::{gather, Dtype};

    #[test]
    fn gather_follows_offsets_and_strides() {
        let b = f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        // Contiguous rows after an offset.
        assert_eq!(
            gather(&b, Dtype::F32, 1, &[2, 2], &[2, 1]),
            [1.0, 2.0, 3.0, 4.0]
        );
        // Transposed: the inner stride is not 1.
        assert_eq!(
            gather(&b, Dtype::F32, 0, &[2, 3], &[1, 2]),
            [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
        );
        // Expanded: stride 0 repeats a row.
        assert_eq!(
            gather(&b, Dtype::F32, 3, &[2, 2], &[0, 1]),
            [3.0, 4.0, 3.0, 4.0]
        );
        // A 0-dimensional tensor is its one element.
        assert_eq!(gather(&b, Dtype::F32, 5, &[], &[]), [5.0]);
        // Other dtypes take the per-element path.
        let h: Vec<u8> = [0x3c00u16, 0x4000, 0x4200]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(gather(&h, Dtype::F16, 0, &[3], &[1]), [1.0, 2.0, 3.0]);
        assert_eq!(gather(&h, Dtype::F16, 1, &[1, 2], &[4, 1]), [2.0, 3.0]);
    }

    #[test]
    fn bad_layouts_and_storages_give_clear_errors() {
        let four = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
        let ok = pickle(&[("w", tensor("0", 4, 0, &[2, 2], &[1, 2]))]);
        let one = |t: Item<'_>| archive(&pickle(&[("w", t)]), &[("0", &four)], "little");
        assert_errors(vec![
            (
                one(tensor("0", 4, 1, &[4], &[1])),
                &["tensor w", "reaches outside its storage"],
            ),
            (
                one(tensor("0", 4, 0, &[2, 2], &[3, 1])),
                &["tensor w", "reaches outside its storage"],
            ),
            (
                archive(&ok, &[("0", &four[..12])], "little"),
                &["tensor w", "reaches outside its storage"],
            ),
            (
                one(tensor("0", 4, 0, &[1 << 40, 1 << 40], &[0, 0])),
                &["tensor w", "overflows"],
            ),
            (
                one(tensor("0", 4, 0, &[1 << 20, 1 << 20], &[0, 0])),
                &["tensor w", "more than"],
            ),
            (
                one(tensor("0", 4, 1 << 62, &[2], &[1 << 62])),
                &["tensor w", "overflow"],
            ),
            (
                one(tensor("0", 1 << 40, 0, &[2], &[1])),
                &["tensor w", "declares 1099511627776 elements"],
            ),
            (
                one(tensor("0", 4, -1, &[2], &[1])),
                &["tensor w", "storage offset"],
            ),
            (
                one(Item::Tensor {
                    key: "0",
                    storage_type: "ComplexFloatStorage",
                    numel: 2,
                    offset: 0,
                    size: &[2],
                    stride: &[1],
                }),
                &[
                    "tensor w",
                    "storage type torch.ComplexFloatStorage is not supported",
                ],
            ),
        ]);
    }
}
