//! PyTorch checkpoints (`torch.save`d state_dicts, `.pth` / `.pt`) read natively, without
//! Python: torchvision's `alexnet-owt-7be5be79.pth` or your own fine-tuned weights.
//!
//! Both formats `torch.save` writes are read:
//!
//! * the zip format (the default since torch 1.6): `<archive>/data.pkl` is the pickled
//!   object, `<archive>/data/<key>` the raw bytes of each storage, `<archive>/byteorder`
//!   their byte order;
//! * the legacy format (`_use_new_zipfile_serialization=False`): a magic-number pickle, a
//!   protocol-version pickle, a system-info pickle, the object's pickle, a pickle of the
//!   storage keys, then each storage as an 8-byte little-endian element count and its bytes.
//!
//! The pickles are run by a small, bounded pickle machine that knows only what `torch.save`
//! emits for a state_dict (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` /
//! `_v3`, `_rebuild_parameter`, `torch._tensor._rebuild_from_type_v2`, typed and untyped
//! storages); it never imports or executes anything, so a hostile file can do no more than
//! fail to load. Storage offsets and strides are honoured, so views and transposed tensors
//! come out as torch sees them; float16, bfloat16, float64 and the integer types are converted
//! to f32. A state_dict nested in a training checkpoint (`{"state_dict": ..., "epoch": ...}`,
//! `"model"`, ...) is found.
//!
//! Every malformed input is an error naming the file (and the tensor when known), never a
//! panic; no storage larger than the file is believed, and the tensors together may not hold
//! more values than the file has bytes (or 2^26, whichever is larger), so memory stays bounded.

use crate::safetensors_io::spec_from_tensors;
use crate::spec::ModelSpec;
use alexnet_core::Arch;
use anyhow::{anyhow, bail, ensure, Context, Result};
use std::collections::HashMap;
use std::io::{Cursor, Read};
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

/// The zip format's local file header signature.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// The legacy format's first pickle: protocol 2, LONG1 of 10 bytes (torch's magic number).
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a";
/// torch's legacy magic number, 0x1950a86a20f9469cfc6c.
const MAGIC_NUMBER: i128 = 0x1950a86a20f9469cfc6c;
/// The legacy format's protocol version.
const PROTOCOL_VERSION: i128 = 1001;
/// Deepest nesting of checkpoint dicts searched for the state_dict.
const MAX_SEARCH_DEPTH: usize = 4;
/// Most items the pickle machine copies in calls (`OrderedDict([...])`), against quadratic
/// work from a pickle that repeats a call on one shared list.
const MAX_WORK: usize = 1 << 26;
/// Most dimensions a tensor may have (torch's own limit).
const MAX_DIMS: usize = 64;

/// Parses a checkpoint held in memory; errors do not name the file (the callers add it).
fn parse(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    if bytes.starts_with(ZIP_MAGIC) {
        parse_zip(bytes)
    } else if bytes.starts_with(LEGACY_MAGIC) {
        parse_legacy(bytes)
    } else {
        bail!("not a PyTorch checkpoint (neither torch.save's zip format nor its legacy format)")
    }
}

// ---------------------------------------------------------------------------------------
// The two container formats.

fn parse_zip(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    let limit = bytes.len() as u64;
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| anyhow!("not a valid zip archive ({e})"))?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let pkl = names
        .iter()
        .filter(|n| n.ends_with("data.pkl"))
        .filter_map(|n| {
            let prefix = &n[..n.len() - "data.pkl".len()];
            let top = prefix.is_empty() || prefix.find('/') == Some(prefix.len() - 1);
            top.then(|| prefix.to_string())
        })
        .min_by_key(|p| p.len());
    let Some(prefix) = pkl else {
        bail!("a zip archive without data.pkl: not written by torch.save");
    };
    if names
        .iter()
        .any(|n| *n == format!("{prefix}constants.pkl") || n.starts_with(&format!("{prefix}code/")))
    {
        bail!(
            "is a TorchScript archive (torch.jit.save), not a state_dict; save \
             `model.state_dict()` with torch.save instead"
        );
    }
    let byteorder = format!("{prefix}byteorder");
    if names.contains(&byteorder) {
        let order = read_entry(&mut zip, &byteorder, limit)?;
        match order.as_slice() {
            b"little" => {}
            b"big" => {
                bail!("its tensors are big-endian (byteorder \"big\"), which is not supported")
            }
            other => bail!(
                "unknown byteorder {:?}",
                String::from_utf8_lossy(&other[..other.len().min(16)])
            ),
        }
    }
    let pickle = read_entry(&mut zip, &format!("{prefix}data.pkl"), limit)?;
    let mut vm = Vm::default();
    let (root, _) = vm.run(&pickle, 0).context("data.pkl")?;
    let entries = find_state_dict(&vm, &root)?;
    let mut source = ZipStorages {
        zip,
        prefix,
        names: names.into_iter().collect(),
        cache: HashMap::new(),
        total: 0,
        limit,
    };
    materialize(&vm, &entries, bytes.len(), &mut source)
}

/// Reads one entry of the archive, refusing one that claims more bytes than the file has.
fn read_entry(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str, limit: u64) -> Result<Vec<u8>> {
    let mut f = zip
        .by_name(name)
        .map_err(|e| anyhow!("cannot open {name} in the archive ({e})"))?;
    ensure!(
        f.size() <= limit,
        "{name} in the archive declares {} bytes, more than the file's {limit}",
        f.size()
    );
    let mut out = Vec::with_capacity(f.size() as usize);
    (&mut f)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| anyhow!("cannot read {name} in the archive ({e})"))?;
    ensure!(
        out.len() as u64 <= limit,
        "{name} in the archive is larger than the file"
    );
    Ok(out)
}

/// Where [`materialize`] finds a storage's bytes.
trait StorageSource {
    fn get(&mut self, key: &str) -> Result<&[u8]>;
    /// No tensor needs `key` any more.
    fn release(&mut self, _key: &str) {}
}

struct ZipStorages<'a> {
    zip: zip::ZipArchive<Cursor<&'a [u8]>>,
    prefix: String,
    names: std::collections::HashSet<String>,
    cache: HashMap<String, Vec<u8>>,
    total: u64,
    limit: u64,
}

impl StorageSource for ZipStorages<'_> {
    fn get(&mut self, key: &str) -> Result<&[u8]> {
        if !self.cache.contains_key(key) {
            let entry = format!("{}data/{key}", self.prefix);
            ensure!(
                self.names.contains(&entry),
                "its storage {key:?} is missing (no {entry} in the archive)"
            );
            let data = read_entry(&mut self.zip, &entry, self.limit)?;
            self.total += data.len() as u64;
            // Storages torch did not compress cannot add up to more than the file; allow
            // some room for an archive recompressed by other tools.
            ensure!(
                self.total <= self.limit.saturating_mul(2),
                "its storages hold more bytes than the file could"
            );
            self.cache.insert(key.to_string(), data);
        }
        self.cache
            .get(key)
            .map(Vec::as_slice)
            .context("storage cache")
    }

    fn release(&mut self, key: &str) {
        self.cache.remove(key);
    }
}

struct LegacyStorages<'a> {
    bytes: &'a [u8],
    ranges: HashMap<String, std::ops::Range<usize>>,
}

impl StorageSource for LegacyStorages<'_> {
    fn get(&mut self, key: &str) -> Result<&[u8]> {
        self.ranges
            .get(key)
            .and_then(|r| self.bytes.get(r.clone()))
            .with_context(|| format!("its storage {key:?} is missing from the file"))
    }
}

fn parse_legacy(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    let mut pos = 0;
    let mut header = Vm::default();
    let (magic, end) = header.run(bytes, pos).context("magic number")?;
    ensure!(
        matches!(magic, Value::Int(MAGIC_NUMBER)),
        "not a PyTorch checkpoint (wrong magic number)"
    );
    pos = end;
    let (version, end) = header.run(bytes, pos).context("protocol version")?;
    match version {
        Value::Int(PROTOCOL_VERSION) => {}
        Value::Int(v) => bail!("unsupported legacy protocol version {v} (1001 is known)"),
        _ => bail!("the protocol version is not an integer"),
    }
    pos = end;
    let (sys_info, end) = header.run(bytes, pos).context("system info")?;
    if let Some(Value::Bool(false)) = header.dict_get(&sys_info, "little_endian") {
        bail!("its tensors are big-endian (little_endian False), which is not supported");
    }
    pos = end;
    let mut vm = Vm::default();
    let (root, end) = vm.run(bytes, pos).context("the main pickle")?;
    pos = end;
    let mut keys_vm = Vm::default();
    let (keys, end) = keys_vm.run(bytes, pos).context("the storage keys")?;
    pos = end;
    let keys = match keys_vm.obj(&keys) {
        Some(Obj::List(items)) | Some(Obj::Tuple(items)) => items
            .iter()
            .map(|k| keys_vm.str(k).map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .context("a storage key is not a string")?,
        _ => bail!("the storage keys are not a list"),
    };
    // The storages follow in the keys' order, each an element count and its bytes.
    let mut decls: HashMap<&str, &StorageDecl> = HashMap::new();
    for d in &vm.storages {
        decls.entry(d.key.as_str()).or_insert(d);
    }
    let mut ranges: HashMap<String, std::ops::Range<usize>> = HashMap::new();
    for key in keys {
        let decl = decls
            .get(key.as_str())
            .with_context(|| format!("storage {key:?} is listed but no tensor declares it"))?;
        let es = decl.dtype.as_ref().map_or(1, |d| d.size());
        let count = bytes
            .get(pos..pos + 8)
            .with_context(|| format!("truncated: storage {key:?} is missing"))?;
        let count = u64::from_le_bytes(count.try_into().unwrap_or_default());
        let len = count
            .checked_mul(es as u64)
            .filter(|&n| n <= (bytes.len() - pos - 8) as u64)
            .with_context(|| {
                format!("truncated: storage {key:?} declares {count} elements the file lacks")
            })? as usize;
        ranges.insert(key, pos + 8..pos + 8 + len);
        pos += 8 + len;
    }
    let entries = find_state_dict(&vm, &root)?;
    let mut source = LegacyStorages { bytes, ranges };
    materialize(&vm, &entries, bytes.len(), &mut source)
}

// ---------------------------------------------------------------------------------------
// Finding the state_dict and building its tensors.

/// Keys under which training scripts commonly nest the state_dict, in order of preference.
const NESTED_KEYS: [&str; 8] = [
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "network",
    "module",
    "weights",
    "params",
];

/// The (name, tensor object) pairs of the state_dict in `root`.
fn find_state_dict(vm: &Vm, root: &Value) -> Result<Vec<(String, usize)>> {
    match search(vm, root, 0, &mut std::collections::HashSet::new())? {
        Some(entries) => Ok(entries),
        None => {
            let what = vm.describe(root);
            match vm.obj(root) {
                Some(Obj::Dict(items)) => {
                    let keys: Vec<String> = items
                        .iter()
                        .take(12)
                        .map(|(k, _)| vm.str(k).map_or_else(|| vm.describe(k), str::to_string))
                        .collect();
                    bail!("no state_dict found: a dict of non-tensors (keys {keys:?})")
                }
                _ => bail!("holds {what}, not a state_dict"),
            }
        }
    }
}

/// The state_dict in `v` or in a dict nested in it; `seen` keeps shared dicts from being
/// searched twice.
fn search(
    vm: &Vm,
    v: &Value,
    depth: usize,
    seen: &mut std::collections::HashSet<usize>,
) -> Result<Option<Vec<(String, usize)>>> {
    if let Value::Obj(i) = v {
        if !seen.insert(*i) {
            return Ok(None);
        }
    }
    let Some(Obj::Dict(items)) = vm.obj(v) else {
        if let Some(Obj::Other(what)) = vm.obj(v) {
            if what.starts_with("__torch__") {
                bail!("holds a TorchScript module ({what}), not a state_dict");
            }
        }
        return Ok(None);
    };
    let tensors: Vec<Option<usize>> = items.iter().map(|(_, v)| vm.tensor_index(v)).collect();
    let n_tensors = tensors.iter().filter(|t| t.is_some()).count();
    if n_tensors == items.len() {
        let mut out = Vec::with_capacity(items.len());
        for ((k, _), t) in items.iter().zip(tensors) {
            let name = vm
                .str(k)
                .with_context(|| format!("a state_dict key is {}, not a string", vm.describe(k)))?;
            out.push((name.to_string(), t.unwrap_or_default()));
        }
        return Ok(Some(out));
    }
    if depth < MAX_SEARCH_DEPTH {
        for key in NESTED_KEYS {
            if let Some(inner) = items.iter().find(|(k, _)| vm.str(k) == Some(key)) {
                if let Some(found) = search(vm, &inner.1, depth + 1, seen)? {
                    return Ok(Some(found));
                }
            }
        }
        let mut found = Vec::new();
        for (_, inner) in items.iter() {
            if let Some(f) = search(vm, inner, depth + 1, seen)? {
                found.push(f);
            }
        }
        if found.len() == 1 {
            return Ok(found.pop());
        }
    }
    if n_tensors > 0 {
        // Mostly tensors: a state_dict with something else where a tensor should be.
        let (k, v) = items
            .iter()
            .zip(&tensors)
            .find(|(_, t)| t.is_none())
            .map(|(kv, _)| kv)
            .context("unreachable: a non-tensor entry")?;
        let name = vm.str(k).map_or_else(|| vm.describe(k), str::to_string);
        bail!(
            "state_dict entry {name} is {}, not a tensor",
            vm.describe(v)
        );
    }
    Ok(None)
}

/// Reads each tensor's values from its storage; `storage(key)` gives a storage's bytes.
fn materialize(
    vm: &Vm,
    entries: &[(String, usize)],
    file_len: usize,
    source: &mut dyn StorageSource,
) -> Result<Vec<NamedTensor>> {
    let budget = file_len.max(1 << 26);
    // How many tensors still need each storage, so a storage is dropped after its last one.
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (_, t) in entries {
        if let Obj::Tensor(meta) = &vm.objs[*t] {
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
            let Obj::Tensor(meta) = &vm.objs[*t] else {
                bail!("not a tensor");
            };
            let layout = vm.layout(meta)?;
            let decl = &vm.storages[layout.storage];
            let dtype = match (&layout.dtype, &decl.dtype) {
                (Some(d), _) => d.clone(),
                (None, Ok(d)) => d.clone(),
                (None, Err(what)) => bail!("its storage type {what} is not supported"),
            };
            let es = dtype.size();
            decl.numel
                .checked_mul(decl.dtype.as_ref().map_or(1, |d| d.size()) as u64)
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
            // The last element this view reaches, in elements of its dtype.
            let last = layout
                .shape
                .iter()
                .zip(&layout.stride)
                .try_fold(layout.offset, |a, (&d, &s)| {
                    (d - 1).checked_mul(s).and_then(|x| a.checked_add(x))
                })
                .and_then(|l| l.checked_add(1))
                .and_then(|l| l.checked_mul(es))
                .with_context(|| {
                    format!(
                        "its shape {:?}, strides {:?} and offset {} overflow",
                        layout.shape, layout.stride, layout.offset
                    )
                })?;
            let bytes = source.get(&decl.key)?;
            ensure!(
                last <= bytes.len(),
                "shape {:?} with strides {:?} and offset {} reaches outside its storage {:?} \
                 ({} bytes needed, {} present)",
                layout.shape,
                layout.stride,
                layout.offset,
                decl.key,
                last,
                bytes.len()
            );
            let values = gather(bytes, &dtype, layout.offset, &layout.shape, &layout.stride);
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
    dtype: &Dtype,
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
        let contiguous = (inner_stride == 1 && *dtype == Dtype::F32)
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

// ---------------------------------------------------------------------------------------
// Element types.

#[derive(Clone, Debug, PartialEq)]
enum Dtype {
    F16,
    BF16,
    F32,
    F64,
    U8,
    I8,
    I16,
    I32,
    I64,
    Bool,
}

impl Dtype {
    fn size(&self) -> usize {
        match self {
            Dtype::U8 | Dtype::I8 | Dtype::Bool => 1,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => 2,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
        }
    }

    /// A storage class (`torch.FloatStorage`, ..., `torch.cuda.FloatStorage` in old files
    /// saved from a GPU) or `torch.UntypedStorage` (bytes).
    fn from_storage(module: &str, name: &str) -> Option<Dtype> {
        if !matches!(module, "torch" | "torch.storage" | "torch.cuda") {
            return None;
        }
        Some(match name {
            "FloatStorage" => Dtype::F32,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::BF16,
            "DoubleStorage" => Dtype::F64,
            "ByteStorage" | "UntypedStorage" => Dtype::U8,
            "CharStorage" => Dtype::I8,
            "ShortStorage" => Dtype::I16,
            "IntStorage" => Dtype::I32,
            "LongStorage" => Dtype::I64,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }

    /// A `torch.dtype` as pickled (`torch.float32`, ...).
    fn from_dtype(module: &str, name: &str) -> Option<Dtype> {
        if module != "torch" {
            return None;
        }
        Some(match name {
            "float32" | "float" => Dtype::F32,
            "float16" | "half" => Dtype::F16,
            "bfloat16" => Dtype::BF16,
            "float64" | "double" => Dtype::F64,
            "uint8" => Dtype::U8,
            "int8" => Dtype::I8,
            "int16" | "short" => Dtype::I16,
            "int32" | "int" => Dtype::I32,
            "int64" | "long" => Dtype::I64,
            "bool" => Dtype::Bool,
            _ => return None,
        })
    }

    /// One little-endian element as f32 (`b` has `self.size()` bytes).
    fn decode(&self, b: &[u8]) -> f32 {
        let mut a = [0u8; 8];
        a[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
        match self {
            Dtype::F32 => f32::from_le_bytes([a[0], a[1], a[2], a[3]]),
            Dtype::F16 => f16_to_f32(u16::from_le_bytes([a[0], a[1]])),
            Dtype::BF16 => f32::from_bits((u16::from_le_bytes([a[0], a[1]]) as u32) << 16),
            Dtype::F64 => f64::from_le_bytes(a) as f32,
            Dtype::U8 => a[0] as f32,
            Dtype::I8 => a[0] as i8 as f32,
            Dtype::I16 => i16::from_le_bytes([a[0], a[1]]) as f32,
            Dtype::I32 => i32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f32,
            Dtype::I64 => i64::from_le_bytes(a) as f32,
            Dtype::Bool => (a[0] != 0) as u8 as f32,
        }
    }
}

/// IEEE binary16 to binary32, exactly (every half is a float).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: m * 2^-24, exact in f32.
            let v = m as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

// ---------------------------------------------------------------------------------------
// The pickle machine.

/// A pickled value. Everything with identity lives in [`Vm::objs`] and is referred to by
/// index, so memo references share (as in Python) and nothing is ever deep-copied or
/// dropped recursively.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i128),
    /// An integer too wide for i128 (never part of a tensor's description).
    BigInt,
    Float(f64),
    Obj(usize),
}

#[derive(Debug)]
enum Obj {
    Str(String),
    Bytes(usize),
    Global(String, String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// An index into [`Vm::storages`].
    Storage(usize),
    Tensor(TensorMeta),
    /// Anything else, described for error messages (`module.name`).
    Other(String),
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)` (or `_v3`, which adds a
/// dtype), checked only when the tensor is read, so errors can name it.
#[derive(Debug)]
struct TensorMeta {
    /// The argument tuple.
    args: Value,
    /// `_rebuild_tensor_v3`'s dtype argument.
    v3: bool,
}

/// A tensor's validated place in its storage.
struct Layout {
    storage: usize,
    dtype: Option<Dtype>,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// A storage as a persistent id declares it: `('storage', torch.FloatStorage, key,
/// location, numel)`.
#[derive(Debug)]
struct StorageDecl {
    key: String,
    /// The element type, or the storage class when it is not one we read.
    dtype: std::result::Result<Dtype, String>,
    numel: u64,
}

#[derive(Default)]
struct Vm {
    objs: Vec<Obj>,
    storages: Vec<StorageDecl>,
    memo: HashMap<u32, Value>,
    /// Items copied by calls, bounded by [`MAX_WORK`].
    work: usize,
}

impl Vm {
    fn obj(&self, v: &Value) -> Option<&Obj> {
        match v {
            Value::Obj(i) => self.objs.get(*i),
            _ => None,
        }
    }

    fn str(&self, v: &Value) -> Option<&str> {
        match self.obj(v) {
            Some(Obj::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn int(&self, v: &Value) -> Option<i128> {
        match v {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i128),
            _ => None,
        }
    }

    fn tensor_index(&self, v: &Value) -> Option<usize> {
        match v {
            Value::Obj(i) if matches!(self.objs.get(*i), Some(Obj::Tensor(_))) => Some(*i),
            _ => None,
        }
    }

    fn dict_get(&self, d: &Value, key: &str) -> Option<&Value> {
        match self.obj(d) {
            Some(Obj::Dict(items)) => items
                .iter()
                .find(|(k, _)| self.str(k) == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// What a value is, for error messages.
    fn describe(&self, v: &Value) -> String {
        match v {
            Value::None => "None".into(),
            Value::Bool(b) => format!("a bool ({})", if *b { "True" } else { "False" }),
            Value::Int(i) => format!("an int ({i})"),
            Value::BigInt => "a big int".into(),
            Value::Float(f) => format!("a float ({f})"),
            Value::Obj(_) => match self.obj(v) {
                Some(Obj::Str(s)) => {
                    format!("a string ({:?})", s.chars().take(40).collect::<String>())
                }
                Some(Obj::Bytes(n)) => format!("{n} bytes"),
                Some(Obj::Global(m, n)) => format!("the global {m}.{n}"),
                Some(Obj::Tuple(t)) => format!("a tuple of {}", t.len()),
                Some(Obj::List(l)) => format!("a list of {}", l.len()),
                Some(Obj::Dict(d)) => format!("a dict of {}", d.len()),
                Some(Obj::Storage(_)) => "a storage".into(),
                Some(Obj::Tensor(_)) => "a tensor".into(),
                Some(Obj::Other(w)) => format!("a {w} object"),
                None => "nothing".into(),
            },
        }
    }

    fn new_obj(&mut self, o: Obj) -> Value {
        self.objs.push(o);
        Value::Obj(self.objs.len() - 1)
    }

    /// Validates a tensor's rebuild arguments.
    fn layout(&self, meta: &TensorMeta) -> Result<Layout> {
        let a: &[Value] = match self.obj(&meta.args) {
            Some(Obj::Tuple(t)) => t,
            _ => &[],
        };
        ensure!(
            a.len() >= if meta.v3 { 7 } else { 4 },
            "its rebuild call has {} arguments, too few",
            a.len()
        );
        let storage = match self.obj(&a[0]) {
            Some(Obj::Storage(s)) => *s,
            _ => bail!("its storage is {}, not a storage", self.describe(&a[0])),
        };
        let offset = self
            .int(&a[1])
            .and_then(|o| usize::try_from(o).ok())
            .with_context(|| format!("its storage offset is {}", self.describe(&a[1])))?;
        let dims = |v: &Value, what: &str| -> Result<Vec<usize>> {
            let items = match self.obj(v) {
                Some(Obj::Tuple(t)) | Some(Obj::List(t)) => t,
                _ => bail!("its {what} is {}, not a tuple", self.describe(v)),
            };
            ensure!(
                items.len() <= MAX_DIMS,
                "its {what} has {} dimensions, more than {MAX_DIMS}",
                items.len()
            );
            items
                .iter()
                .map(|d| {
                    self.int(d)
                        .and_then(|d| usize::try_from(d).ok())
                        .with_context(|| format!("its {what} holds {}", self.describe(d)))
                })
                .collect()
        };
        let shape = dims(&a[2], "size")?;
        let stride = dims(&a[3], "stride")?;
        ensure!(
            shape.len() == stride.len(),
            "its size {shape:?} and stride {stride:?} differ in length"
        );
        let dtype = if meta.v3 {
            match self.obj(&a[6]) {
                Some(Obj::Global(m, n)) => Some(
                    Dtype::from_dtype(m, n)
                        .with_context(|| format!("its dtype {m}.{n} is not supported"))?,
                ),
                _ => bail!("its dtype is {}", self.describe(&a[6])),
            }
        } else {
            None
        };
        Ok(Layout {
            storage,
            dtype,
            offset,
            shape,
            stride,
        })
    }

    /// Runs one pickle starting at `data[pos]`; returns its value and where it ended.
    fn run(&mut self, data: &[u8], mut pos: usize) -> Result<(Value, usize)> {
        let mut stack: Vec<Value> = Vec::new();
        let mut marks: Vec<usize> = Vec::new();
        macro_rules! take {
            ($n:expr) => {{
                let n: usize = $n;
                let s = data
                    .get(pos..)
                    .and_then(|d| d.get(..n))
                    .with_context(|| format!("truncated pickle at byte {pos}"))?;
                pos += n;
                s
            }};
        }
        macro_rules! pop {
            () => {{
                ensure!(
                    stack.len() > marks.last().copied().unwrap_or(0),
                    "malformed pickle: stack underflow at byte {}",
                    pos - 1
                );
                stack.pop().unwrap_or(Value::None)
            }};
        }
        macro_rules! top_obj {
            () => {{
                match stack.last() {
                    Some(Value::Obj(i)) => *i,
                    _ => bail!("malformed pickle at byte {}: no object to update", pos - 1),
                }
            }};
        }
        loop {
            let at = pos;
            let op = take!(1)[0];
            match op {
                0x80 => {
                    // PROTO
                    let p = take!(1)[0];
                    ensure!(p <= 5, "unsupported pickle protocol {p}");
                }
                0x95 => {
                    // FRAME: a length hint only.
                    take!(8);
                }
                b'.' => {
                    // STOP
                    let v = pop!();
                    return Ok((v, pos));
                }
                b'(' => marks.push(stack.len()),
                b'0' => {
                    pop!();
                }
                b'1' => {
                    let items = pop_mark(&mut stack, &mut marks, at)?;
                    drop(items);
                }
                b'2' => {
                    let v = stack
                        .last()
                        .cloned()
                        .context("malformed pickle: DUP of nothing")?;
                    stack.push(v);
                }
                b'}' => {
                    let v = self.new_obj(Obj::Dict(Vec::new()));
                    stack.push(v);
                }
                b']' | 0x8f => {
                    // EMPTY_LIST, EMPTY_SET (a set is kept as a list)
                    let v = self.new_obj(Obj::List(Vec::new()));
                    stack.push(v);
                }
                b')' => {
                    let v = self.new_obj(Obj::Tuple(Vec::new()));
                    stack.push(v);
                }
                b't' | 0x91 => {
                    // TUPLE, FROZENSET
                    let items = pop_mark(&mut stack, &mut marks, at)?;
                    let v = self.new_obj(Obj::Tuple(items));
                    stack.push(v);
                }
                b'l' => {
                    let items = pop_mark(&mut stack, &mut marks, at)?;
                    let v = self.new_obj(Obj::List(items));
                    stack.push(v);
                }
                b'd' => {
                    let items = pop_mark(&mut stack, &mut marks, at)?;
                    let v = self.new_obj(Obj::Dict(pairs(items, at)?));
                    stack.push(v);
                }
                0x85..=0x87 => {
                    // TUPLE1..3
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(pop!());
                    }
                    items.reverse();
                    let v = self.new_obj(Obj::Tuple(items));
                    stack.push(v);
                }
                b'q' | b'r' | 0x94 => {
                    // BINPUT, LONG_BINPUT, MEMOIZE
                    let idx = match op {
                        b'q' => take!(1)[0] as u32,
                        b'r' => u32::from_le_bytes(take!(4).try_into()?),
                        _ => u32::try_from(self.memo.len()).context("memo too large")?,
                    };
                    let v = stack
                        .last()
                        .cloned()
                        .context("malformed pickle: PUT of nothing")?;
                    self.memo.insert(idx, v);
                }
                b'h' | b'j' => {
                    // BINGET, LONG_BINGET
                    let idx = if op == b'h' {
                        take!(1)[0] as u32
                    } else {
                        u32::from_le_bytes(take!(4).try_into()?)
                    };
                    let v = self.memo.get(&idx).cloned().with_context(|| {
                        format!("malformed pickle: memo {idx} is unset (byte {at})")
                    })?;
                    stack.push(v);
                }
                b'X' | 0x8c | 0x8d | b'U' | b'T' => {
                    // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, SHORT_BINSTRING, BINSTRING
                    let n = match op {
                        b'X' | b'T' => u32::from_le_bytes(take!(4).try_into()?) as u64,
                        0x8d => u64::from_le_bytes(take!(8).try_into()?),
                        _ => take!(1)[0] as u64,
                    };
                    let n = usize::try_from(n).context("string too long")?;
                    let raw = take!(n);
                    let s = if matches!(op, b'U' | b'T') {
                        raw.iter().map(|&b| b as char).collect()
                    } else {
                        std::str::from_utf8(raw)
                            .map_err(|_| anyhow!("malformed pickle: invalid UTF-8 at byte {at}"))?
                            .to_string()
                    };
                    let v = self.new_obj(Obj::Str(s));
                    stack.push(v);
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                    let n = match op {
                        b'B' => u32::from_le_bytes(take!(4).try_into()?) as u64,
                        b'C' => take!(1)[0] as u64,
                        _ => u64::from_le_bytes(take!(8).try_into()?),
                    };
                    let n = usize::try_from(n).context("bytes too long")?;
                    take!(n);
                    let v = self.new_obj(Obj::Bytes(n));
                    stack.push(v);
                }
                b'c' => {
                    // GLOBAL: "module\nname\n"
                    let module = line(data, &mut pos)?;
                    let name = line(data, &mut pos)?;
                    let v = self.new_obj(Obj::Global(module, name));
                    stack.push(v);
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = pop!();
                    let module = pop!();
                    let (Some(m), Some(n)) = (self.str(&module), self.str(&name)) else {
                        bail!("malformed pickle: STACK_GLOBAL of non-strings at byte {at}");
                    };
                    let g = Obj::Global(m.to_string(), n.to_string());
                    let v = self.new_obj(g);
                    stack.push(v);
                }
                b'Q' => {
                    // BINPERSID: torch's storages.
                    let pid = pop!();
                    let v = self
                        .persistent_load(&pid)
                        .with_context(|| format!("unsupported persistent id at byte {at}"))?;
                    stack.push(v);
                }
                b'J' => {
                    let v = i32::from_le_bytes(take!(4).try_into()?);
                    stack.push(Value::Int(v as i128));
                }
                b'K' => {
                    let v = take!(1)[0];
                    stack.push(Value::Int(v as i128));
                }
                b'M' => {
                    let v = u16::from_le_bytes(take!(2).try_into()?);
                    stack.push(Value::Int(v as i128));
                }
                0x8a | 0x8b => {
                    // LONG1, LONG4: little-endian two's complement.
                    let n = if op == 0x8a {
                        take!(1)[0] as usize
                    } else {
                        let n = i32::from_le_bytes(take!(4).try_into()?);
                        usize::try_from(n).context("malformed pickle: negative LONG4 length")?
                    };
                    let raw = take!(n);
                    stack.push(if n > 16 {
                        Value::BigInt
                    } else if n == 0 {
                        Value::Int(0)
                    } else {
                        let neg = raw[n - 1] & 0x80 != 0;
                        let mut b = [if neg { 0xff } else { 0 }; 16];
                        b[..n].copy_from_slice(raw);
                        Value::Int(i128::from_le_bytes(b))
                    });
                }
                0x88 => stack.push(Value::Bool(true)),
                0x89 => stack.push(Value::Bool(false)),
                b'N' => stack.push(Value::None),
                b'G' => {
                    let v = f64::from_be_bytes(take!(8).try_into()?);
                    stack.push(Value::Float(v));
                }
                b'R' => {
                    // REDUCE
                    let args = pop!();
                    let func = pop!();
                    let v = self.call(&func, &args, 0)?;
                    stack.push(v);
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args)
                    let args = pop!();
                    let cls = pop!();
                    let v = self.call(&cls, &args, 0)?;
                    stack.push(v);
                }
                0x92 => {
                    // NEWOBJ_EX: cls, args, kwargs
                    let _kwargs = pop!();
                    let args = pop!();
                    let cls = pop!();
                    let v = self.call(&cls, &args, 0)?;
                    stack.push(v);
                }
                b'b' => {
                    // BUILD: the state of an OrderedDict (`_metadata`), a tensor or a
                    // Parameter is not needed.
                    let _state = pop!();
                    top_obj!();
                }
                b's' => {
                    let v = pop!();
                    let k = pop!();
                    let d = top_obj!();
                    match &mut self.objs[d] {
                        Obj::Dict(items) => items.push((k, v)),
                        _ => bail!("malformed pickle: SETITEM on a non-dict at byte {at}"),
                    }
                }
                b'u' => {
                    let items = pop_mark(&mut stack, &mut marks, at)?;
                    let d = top_obj!();
                    let kv = pairs(items, at)?;
                    match &mut self.objs[d] {
                        Obj::Dict(items) => items.extend(kv),
                        _ => bail!("malformed pickle: SETITEMS on a non-dict at byte {at}"),
                    }
                }
                b'a' => {
                    let v = pop!();
                    let l = top_obj!();
                    match &mut self.objs[l] {
                        Obj::List(items) => items.push(v),
                        _ => bail!("malformed pickle: APPEND to a non-list at byte {at}"),
                    }
                }
                b'e' | 0x90 => {
                    // APPENDS, ADDITEMS
                    let items = pop_mark(&mut stack, &mut marks, at)?;
                    let l = top_obj!();
                    match &mut self.objs[l] {
                        Obj::List(list) => list.extend(items),
                        _ => bail!("malformed pickle: APPENDS to a non-list at byte {at}"),
                    }
                }
                other => bail!("unknown pickle opcode 0x{other:02x} at byte {at}"),
            }
        }
    }

    /// `('storage', storage_type, key, location, numel[, view_metadata])`.
    fn persistent_load(&mut self, pid: &Value) -> Result<Value> {
        let Some(Obj::Tuple(t)) = self.obj(pid) else {
            bail!("{}", self.describe(pid));
        };
        ensure!(
            t.len() >= 5 && self.str(&t[0]) == Some("storage"),
            "not a storage"
        );
        if t.len() > 5 && t[5] != Value::None {
            bail!("a storage view (torch < 0.4), which is not supported");
        }
        let dtype = match self.obj(&t[1]) {
            Some(Obj::Global(m, n)) => Dtype::from_storage(m, n).ok_or(format!("{m}.{n}")),
            _ => bail!("the storage type is {}", self.describe(&t[1])),
        };
        let key = self
            .str(&t[2])
            .context("the storage key is not a string")?
            .to_string();
        let numel = self
            .int(&t[4])
            .and_then(|n| u64::try_from(n).ok())
            .context("the storage size is not a count")?;
        self.storages.push(StorageDecl { key, dtype, numel });
        let s = self.storages.len() - 1;
        Ok(self.new_obj(Obj::Storage(s)))
    }

    /// `func(*args)` for the few callables torch.save's state_dicts use.
    fn call(&mut self, func: &Value, args: &Value, depth: usize) -> Result<Value> {
        let Some(Obj::Global(m, n)) = self.obj(func) else {
            bail!("malformed pickle: calling {}", self.describe(func));
        };
        let (m, n) = (m.clone(), n.clone());
        let tuple = args;
        // The first few arguments (a tuple shared through the memo is never copied whole).
        let args: Vec<Value> = match self.obj(tuple) {
            Some(Obj::Tuple(a)) => a.iter().take(3).cloned().collect(),
            _ => Vec::new(),
        };
        Ok(match (m.as_str(), n.as_str()) {
            ("collections", "OrderedDict") | ("builtins" | "__builtin__", "dict") => {
                // OrderedDict() or OrderedDict([(k, v), ...]).
                let len = match args.first().and_then(|a| self.obj(a)) {
                    Some(Obj::List(l)) => l.len(),
                    _ => 0,
                };
                self.work += len;
                ensure!(
                    self.work <= MAX_WORK,
                    "malformed pickle: too many dict items"
                );
                let mut items = Vec::new();
                if let Some(Obj::List(l)) = args.first().and_then(|a| self.obj(a)) {
                    for kv in l {
                        if let Some(Obj::Tuple(p)) = self.obj(kv) {
                            if p.len() == 2 {
                                items.push((p[0].clone(), p[1].clone()));
                            }
                        }
                    }
                }
                self.new_obj(Obj::Dict(items))
            }
            ("torch._utils", "_rebuild_tensor" | "_rebuild_tensor_v2") => {
                let args = tuple.clone();
                self.new_obj(Obj::Tensor(TensorMeta { args, v3: false }))
            }
            ("torch._utils", "_rebuild_tensor_v3") => {
                let args = tuple.clone();
                self.new_obj(Obj::Tensor(TensorMeta { args, v3: true }))
            }
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                args.first().cloned().unwrap_or(Value::None)
            }
            ("torch._tensor" | "torch._utils", "_rebuild_from_type_v2" | "_rebuild_from_type") => {
                // (func, type, args, state): a tensor subclass or a tensor with Python
                // attributes; the tensor is func(*args).
                ensure!(depth < 4, "malformed pickle: nested {n} calls");
                ensure!(
                    args.len() >= 3,
                    "malformed pickle: {n} with {} arguments",
                    args.len()
                );
                self.call(&args[0], &args[2], depth + 1)?
            }
            _ => self.new_obj(Obj::Other(format!("{m}.{n}"))),
        })
    }
}

/// The items above the topmost mark, which is removed.
fn pop_mark(stack: &mut Vec<Value>, marks: &mut Vec<usize>, at: usize) -> Result<Vec<Value>> {
    let m = marks
        .pop()
        .with_context(|| format!("malformed pickle: no MARK before byte {at}"))?;
    ensure!(
        m <= stack.len(),
        "malformed pickle: stack underflow at byte {at}"
    );
    Ok(stack.split_off(m))
}

fn pairs(items: Vec<Value>, at: usize) -> Result<Vec<(Value, Value)>> {
    ensure!(
        items.len() % 2 == 0,
        "malformed pickle: odd number of dict items at byte {at}"
    );
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// A newline-terminated ASCII line (GLOBAL's operands), at most 256 bytes.
fn line(data: &[u8], pos: &mut usize) -> Result<String> {
    let rest = data.get(*pos..).unwrap_or_default();
    let n = rest
        .iter()
        .take(256)
        .position(|&b| b == b'\n')
        .with_context(|| format!("malformed pickle: unterminated GLOBAL at byte {pos}"))?;
    let s = std::str::from_utf8(&rest[..n])
        .map_err(|_| anyhow!("malformed pickle: GLOBAL is not text at byte {pos}"))?
        .to_string();
    *pos += n + 1;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alexnet_core::builtin::{MICRO, PAPER, TORCHVISION};
    use rand::{Rng, SeedableRng};
    use safetensors::tensor::{Dtype as StDtype, SafeTensors};
    use std::io::Write;
    use std::path::PathBuf;

    fn data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(data(name)).unwrap()
    }

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

    // -----------------------------------------------------------------------------------
    // Checkpoints written here, to reach the cases torch.save never writes.

    enum Item<'a> {
        Tensor {
            key: &'a str,
            storage_type: &'a str,
            numel: i64,
            offset: i64,
            size: &'a [i64],
            stride: &'a [i64],
        },
        Int(i64),
    }

    fn global(p: &mut Vec<u8>, module: &str, name: &str) {
        p.push(b'c');
        p.extend(format!("{module}\n{name}\n").bytes());
    }

    fn unicode(p: &mut Vec<u8>, s: &str) {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.bytes());
    }

    fn long(p: &mut Vec<u8>, v: i64) {
        p.extend([0x8a, 8]);
        p.extend(v.to_le_bytes());
    }

    /// A protocol-2 pickle of an OrderedDict, as torch.save writes one.
    fn pickle(entries: &[(&str, Item<'_>)]) -> Vec<u8> {
        let mut p = vec![0x80, 2];
        global(&mut p, "collections", "OrderedDict");
        p.extend(b")R(");
        for (name, item) in entries {
            unicode(&mut p, name);
            match item {
                Item::Tensor {
                    key,
                    storage_type,
                    numel,
                    offset,
                    size,
                    stride,
                } => {
                    global(&mut p, "torch._utils", "_rebuild_tensor_v2");
                    p.extend(b"((");
                    unicode(&mut p, "storage");
                    global(&mut p, "torch", storage_type);
                    unicode(&mut p, key);
                    unicode(&mut p, "cpu");
                    long(&mut p, *numel);
                    p.extend(b"tQ");
                    long(&mut p, *offset);
                    p.push(b'(');
                    size.iter().for_each(|&d| long(&mut p, d));
                    p.extend(b"t(");
                    stride.iter().for_each(|&d| long(&mut p, d));
                    p.extend(b"t\x89");
                    global(&mut p, "collections", "OrderedDict");
                    p.extend(b")RtR");
                }
                Item::Int(i) => long(&mut p, *i),
            }
        }
        p.extend(b"u.");
        p
    }

    /// A zip-format checkpoint: `archive/data.pkl`, `archive/data/<key>`, `archive/byteorder`.
    fn archive(pickle: &[u8], storages: &[(&str, &[u8])], byteorder: &str) -> Vec<u8> {
        let mut entries = vec![("archive/data.pkl".to_string(), pickle.to_vec())];
        entries.push(("archive/byteorder".into(), byteorder.as_bytes().to_vec()));
        for (k, b) in storages {
            entries.push((format!("archive/data/{k}"), b.to_vec()));
        }
        write_zip(&entries)
    }

    fn write_zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in entries {
            w.start_file(name.as_str(), opts).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// The entries of a zip file, to rewrite it.
    fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut z = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        (0..z.len())
            .map(|i| {
                let mut f = z.by_index(i).unwrap();
                let mut b = Vec::new();
                f.read_to_end(&mut b).unwrap();
                (f.name().to_string(), b)
            })
            .collect()
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// A spec's weights as a zip-format checkpoint, each tensor in its own storage.
    fn write_spec(spec: &ModelSpec) -> Vec<u8> {
        let arch = spec.arch();
        let mut owned: Vec<(String, Vec<i64>, Vec<f32>)> = Vec::new();
        for step in arch.walk() {
            let step = step.unwrap();
            let (Some(stem), Some(p)) = (
                crate::safetensors_io::tensor_stem(&arch, step.index),
                spec.params[step.index].as_ref(),
            ) else {
                continue;
            };
            let dims = step.layer.weight_dims(step.input);
            let wd: Vec<i64> = dims
                .iter()
                .filter(|&&d| d != 0)
                .map(|&d| d as i64)
                .collect();
            owned.push((format!("{stem}.weight"), wd, p.weight.clone()));
            owned.push((
                format!("{stem}.bias"),
                vec![p.bias.len() as i64],
                p.bias.clone(),
            ));
        }
        let keys: Vec<String> = (0..owned.len()).map(|i| i.to_string()).collect();
        let strides: Vec<Vec<i64>> = owned
            .iter()
            .map(|(_, shape, _)| {
                let mut s = vec![1i64; shape.len()];
                for d in (0..shape.len().saturating_sub(1)).rev() {
                    s[d] = s[d + 1] * shape[d + 1];
                }
                s
            })
            .collect();
        let entries: Vec<(&str, Item<'_>)> = owned
            .iter()
            .zip(&keys)
            .zip(&strides)
            .map(|(((name, shape, values), key), stride)| {
                (
                    name.as_str(),
                    Item::Tensor {
                        key,
                        storage_type: "FloatStorage",
                        numel: values.len() as i64,
                        offset: 0,
                        size: shape,
                        stride,
                    },
                )
            })
            .collect();
        let storages: Vec<Vec<u8>> = owned.iter().map(|(_, _, v)| f32_bytes(v)).collect();
        let st: Vec<(&str, &[u8])> = keys
            .iter()
            .zip(&storages)
            .map(|(k, b)| (k.as_str(), b.as_slice()))
            .collect();
        archive(&pickle(&entries), &st, "little")
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

    /// The error reading `bytes` from a file named bad.pth; it must name the file.
    fn error(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.pth");
        std::fs::write(&path, bytes).unwrap();
        let e = format!("{:#}", read_state_dict(&path).unwrap_err());
        assert!(e.contains("bad.pth"), "{e}");
        e
    }

    fn tensor<'a>(
        key: &'a str,
        numel: i64,
        offset: i64,
        size: &'a [i64],
        stride: &'a [i64],
    ) -> Item<'a> {
        Item::Tensor {
            key,
            storage_type: "FloatStorage",
            numel,
            offset,
            size,
            stride,
        }
    }

    #[test]
    fn crafted_bad_files_give_clear_errors() {
        let four = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
        let ok = pickle(&[("w", tensor("0", 4, 0, &[2, 2], &[1, 2]))]);
        // The well-formed baseline, transposed.
        let t = parse(&archive(&ok, &[("0", &four)], "little")).unwrap();
        assert_eq!(t[0].values, [1.0, 3.0, 2.0, 4.0]);

        let cases: Vec<(Vec<u8>, &[&str])> = vec![
            (archive(&ok, &[("0", &four)], "big"), &["big-endian"]),
            (
                archive(&ok, &[], "little"),
                &["tensor w", "storage \"0\" is missing"],
            ),
            (
                archive(
                    &pickle(&[("w", tensor("0", 4, 1, &[4], &[1]))]),
                    &[("0", &four)],
                    "little",
                ),
                &["tensor w", "reaches outside its storage"],
            ),
            (
                archive(
                    &pickle(&[("w", tensor("0", 4, 0, &[2, 2], &[3, 1]))]),
                    &[("0", &four)],
                    "little",
                ),
                &["tensor w", "reaches outside its storage"],
            ),
            (
                archive(&ok, &[("0", &four[..12])], "little"),
                &["tensor w", "reaches outside its storage"],
            ),
            (
                archive(
                    &pickle(&[("w", tensor("0", 4, 0, &[1 << 40, 1 << 40], &[0, 0]))]),
                    &[("0", &four)],
                    "little",
                ),
                &["tensor w", "overflows"],
            ),
            (
                archive(
                    &pickle(&[("w", tensor("0", 4, 0, &[1 << 20, 1 << 20], &[0, 0]))]),
                    &[("0", &four)],
                    "little",
                ),
                &["tensor w", "more than"],
            ),
            (
                archive(
                    &pickle(&[("w", tensor("0", 4, 1 << 62, &[2], &[1 << 62]))]),
                    &[("0", &four)],
                    "little",
                ),
                &["tensor w", "overflow"],
            ),
            (
                archive(
                    &pickle(&[("w", tensor("0", 1 << 40, 0, &[2], &[1]))]),
                    &[("0", &four)],
                    "little",
                ),
                &["tensor w", "declares 1099511627776 elements"],
            ),
            (
                archive(
                    &pickle(&[("w", tensor("0", 4, -1, &[2], &[1]))]),
                    &[("0", &four)],
                    "little",
                ),
                &["tensor w", "storage offset"],
            ),
            (
                archive(
                    &pickle(&[
                        ("w", tensor("0", 4, 0, &[2], &[1])),
                        ("epoch", Item::Int(3)),
                    ]),
                    &[("0", &four)],
                    "little",
                ),
                &["state_dict entry epoch is an int (3), not a tensor"],
            ),
            (
                archive(
                    &pickle(&[(
                        "w",
                        Item::Tensor {
                            key: "0",
                            storage_type: "ComplexFloatStorage",
                            numel: 2,
                            offset: 0,
                            size: &[2],
                            stride: &[1],
                        },
                    )]),
                    &[("0", &four)],
                    "little",
                ),
                &[
                    "tensor w",
                    "storage type torch.ComplexFloatStorage is not supported",
                ],
            ),
            (
                archive(b"\x80\x02\xff.", &[], "little"),
                &["unknown pickle opcode 0xff at byte 2"],
            ),
            (
                archive(b"\x80\x02K\x05.", &[], "little"),
                &["holds an int (5), not a state_dict"],
            ),
            (
                archive(b"\x80\x02).", &[], "little"),
                &["holds a tuple of 0, not a state_dict"],
            ),
            (
                archive(b"\x80\x02(u.", &[], "little"),
                &["no object to update"],
            ),
            (
                archive(b"\x80\x02K\x01(0.", &[], "little"),
                &["stack underflow"],
            ),
            (
                archive(b"\x80\x02h\x07.", &[], "little"),
                &["memo 7 is unset"],
            ),
            (
                write_zip(&[("a/b.txt".into(), b"hi".to_vec())]),
                &["without data.pkl"],
            ),
            (
                b"PK\x03\x04 not really".to_vec(),
                &["not a valid zip archive"],
            ),
            (b"garbage".to_vec(), &["not a PyTorch checkpoint"]),
            (Vec::new(), &["not a PyTorch checkpoint"]),
        ];
        for (bytes, needles) in cases {
            let e = error(&bytes);
            for n in needles {
                assert!(e.contains(n), "{e:?} lacks {n:?}");
            }
        }

        // A legacy file written on a big-endian machine.
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

    #[test]
    fn torchscript_archive_is_refused() {
        let e = format!(
            "{:#}",
            read_state_dict(&data("torchscript.pt")).unwrap_err()
        );
        assert!(
            e.contains(
                "torchscript.pt: is a TorchScript archive (torch.jit.save), not a state_dict"
            ),
            "{e}"
        );
        // Even without its code/ folder, its pickle is a TorchScript module.
        let entries: Vec<_> = unzip(&read("torchscript.pt"))
            .into_iter()
            .filter(|(n, _)| !n.contains("/code/") && !n.ends_with("constants.pkl"))
            .collect();
        let e = error(&write_zip(&entries));
        assert!(e.contains("TorchScript module"), "{e}");
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
            let zip = bytes.starts_with(ZIP_MAGIC);
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
