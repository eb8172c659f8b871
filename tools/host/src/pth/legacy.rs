//! The legacy format (`torch.save(..., _use_new_zipfile_serialization=False)`, the only one
//! before torch 1.6): a magic-number pickle, a protocol-version pickle, a system-info
//! pickle, the object's pickle, a pickle of the storage keys, then each storage in the keys'
//! order as an 8-byte little-endian element count and its bytes.

use super::pickle::{Obj, Value, Vm};
use super::rebuild::{materialize, StorageSource};
use super::state_dict::find_state_dict;
use super::torch::StorageDecl;
use super::NamedTensor;
use anyhow::{bail, ensure, Context, Result};
use std::collections::HashMap;
use std::ops::Range;

/// The first pickle: protocol 2, LONG1 of 10 bytes (torch's magic number).
pub(super) const MAGIC: &[u8] = b"\x80\x02\x8a\x0a";
/// torch's legacy magic number.
const MAGIC_NUMBER: i128 = 0x1950a86a20f9469cfc6c;
/// The legacy format's protocol version.
const PROTOCOL_VERSION: i128 = 1001;

/// The state_dict of a legacy-format checkpoint.
pub(super) fn parse(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    let pos = check_header(bytes)?;
    let mut vm = Vm::default();
    let (root, pos) = vm.run(bytes, pos).context("the main pickle")?;
    let mut keys_vm = Vm::default();
    let (keys, pos) = keys_vm.run(bytes, pos).context("the storage keys")?;
    let keys = match keys_vm.obj(&keys) {
        Some(Obj::List(items)) | Some(Obj::Tuple(items)) => items
            .iter()
            .map(|k| keys_vm.str(k).map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .context("a storage key is not a string")?,
        _ => bail!("the storage keys are not a list"),
    };
    let ranges = storage_ranges(bytes, pos, keys, &vm.storages)?;
    let entries = find_state_dict(&vm, &root)?;
    let mut source = LegacyStorages { bytes, ranges };
    materialize(&vm, &entries, bytes.len(), &mut source)
}

/// Checks the magic number, protocol version and byte order; returns where the object's
/// pickle starts.
fn check_header(bytes: &[u8]) -> Result<usize> {
    let mut header = Vm::default();
    let (magic, pos) = header.run(bytes, 0).context("magic number")?;
    ensure!(
        matches!(magic, Value::Int(MAGIC_NUMBER)),
        "not a PyTorch checkpoint (wrong magic number)"
    );
    let (version, pos) = header.run(bytes, pos).context("protocol version")?;
    match version {
        Value::Int(PROTOCOL_VERSION) => {}
        Value::Int(v) => bail!("unsupported legacy protocol version {v} (1001 is known)"),
        _ => bail!("the protocol version is not an integer"),
    }
    let (sys_info, pos) = header.run(bytes, pos).context("system info")?;
    if let Some(Value::Bool(false)) = header.dict_get(&sys_info, "little_endian") {
        bail!("its tensors are big-endian (little_endian False), which is not supported");
    }
    Ok(pos)
}

/// Where each storage's bytes lie: they follow `pos` in the keys' order, each an element
/// count and its bytes, the element size being the one its declaration gives.
fn storage_ranges(
    bytes: &[u8],
    mut pos: usize,
    keys: Vec<String>,
    storages: &[StorageDecl],
) -> Result<HashMap<String, Range<usize>>> {
    let mut decls: HashMap<&str, &StorageDecl> = HashMap::new();
    for d in storages {
        decls.entry(d.key.as_str()).or_insert(d);
    }
    let mut ranges = HashMap::new();
    for key in keys {
        let decl = decls
            .get(key.as_str())
            .with_context(|| format!("storage {key:?} is listed but no tensor declares it"))?;
        let count: [u8; 8] = bytes
            .get(pos..pos + 8)
            .and_then(|c| c.try_into().ok())
            .with_context(|| format!("truncated: storage {key:?} is missing"))?;
        let count = u64::from_le_bytes(count);
        let len = count
            .checked_mul(decl.element_size() as u64)
            .filter(|&n| n <= (bytes.len() - pos - 8) as u64)
            .with_context(|| {
                format!("truncated: storage {key:?} declares {count} elements the file lacks")
            })? as usize;
        ranges.insert(key, pos + 8..pos + 8 + len);
        pos += 8 + len;
    }
    Ok(ranges)
}

/// The storages of a legacy file: ranges of the file itself.
struct LegacyStorages<'a> {
    bytes: &'a [u8],
    ranges: HashMap<String, Range<usize>>,
}

impl StorageSource for LegacyStorages<'_> {
    fn get(&mut self, key: &str) -> Result<&[u8]> {
        self.ranges
            .get(key)
            .and_then(|r| self.bytes.get(r.clone()))
            .with_context(|| format!("its storage {key:?} is missing from the file"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{error, read};

    #[test]
    fn big_endian_or_truncated_files_are_refused() {
        // A legacy file written on a big-endian machine: `little_endian` True made False.
        let mut legacy = read("micro_legacy.pth");
        let at = legacy
            .windows(13)
            .position(|w| w == b"little_endian")
            .unwrap();
        let t = at + legacy[at..].iter().position(|&b| b == 0x88).unwrap();
        legacy[t] = 0x89;
        assert!(error(&legacy).contains("big-endian"));

        // A legacy file missing one of its storages.
        let legacy = read("micro_legacy.pth");
        let e = error(&legacy[..legacy.len() - 40 * 4 - 8]);
        assert!(e.contains("truncated"), "{e}");
    }
}
