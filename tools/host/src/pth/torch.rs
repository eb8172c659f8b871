//! What `torch.save`'s pickles call, interpreted without Python: storages declared by
//! persistent id, tensors by `torch._utils._rebuild_tensor_v2` / `_v3` (kept as their
//! arguments until [`super::rebuild`] reads them), `_rebuild_parameter`,
//! `torch._tensor._rebuild_from_type_v2` and `collections.OrderedDict`.

use super::dtype::Dtype;
use super::pickle::{Obj, Value, Vm};
use anyhow::{bail, ensure, Context, Result};

/// Most items the pickle machine copies in calls (`OrderedDict([...])`), against quadratic
/// work from a pickle that repeats a call on one shared list.
pub(super) const MAX_WORK: usize = 1 << 26;
/// Most dimensions a tensor may have (torch's own limit).
const MAX_DIMS: usize = 64;
/// Deepest nesting of `_rebuild_from_type_v2` calls followed.
const MAX_CALL_DEPTH: usize = 4;

/// A storage as a persistent id declares it: `('storage', torch.FloatStorage, key,
/// location, numel)`.
#[derive(Debug)]
pub(super) struct StorageDecl {
    /// The storage's name: its file in a zip archive, its place in a legacy file.
    pub(super) key: String,
    /// The element type, or the storage class when it is not one we read.
    pub(super) dtype: std::result::Result<Dtype, String>,
    /// Elements (of `dtype`; bytes for an untyped storage).
    pub(super) numel: u64,
}

impl StorageDecl {
    /// Bytes per element as declared (1 for a storage class we cannot read, whose size only
    /// bounds-checks the file).
    pub(super) fn element_size(&self) -> usize {
        self.dtype.as_ref().map_or(1, |d| d.size())
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)` (or `_v3`, which adds a
/// dtype), checked only when the tensor is read, so errors can name it.
#[derive(Debug)]
pub(super) struct TensorMeta {
    /// The argument tuple.
    args: Value,
    /// `_rebuild_tensor_v3`'s dtype argument.
    v3: bool,
}

/// A tensor's validated place in its storage.
pub(super) struct Layout {
    /// An index into [`Vm::storages`].
    pub(super) storage: usize,
    /// `_rebuild_tensor_v3`'s dtype, which overrides the storage's.
    pub(super) dtype: Option<Dtype>,
    /// Offset into the storage, in elements.
    pub(super) offset: usize,
    pub(super) shape: Vec<usize>,
    /// Strides, in elements.
    pub(super) stride: Vec<usize>,
}

impl Vm {
    /// `('storage', storage_type, key, location, numel[, view_metadata])`.
    pub(super) fn persistent_load(&mut self, pid: &Value) -> Result<Value> {
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

    /// `func(*args)` for the few callables torch.save's state_dicts use; any other is an
    /// inert [`Obj::Other`] (a state_dict search skips it, an error names it).
    pub(super) fn call(&mut self, func: &Value, args: &Value, depth: usize) -> Result<Value> {
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
                self.ordered_dict(args.first())?
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
                ensure!(depth < MAX_CALL_DEPTH, "malformed pickle: nested {n} calls");
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

    /// `OrderedDict()` or `OrderedDict([(k, v), ...])`; items that are not pairs are
    /// skipped.
    fn ordered_dict(&mut self, items: Option<&Value>) -> Result<Value> {
        self.work += self.list_items(items).len();
        ensure!(
            self.work <= MAX_WORK,
            "malformed pickle: too many dict items"
        );
        let pairs = self
            .list_items(items)
            .iter()
            .filter_map(|kv| match self.obj(kv) {
                Some(Obj::Tuple(p)) if p.len() == 2 => Some((p[0].clone(), p[1].clone())),
                _ => None,
            })
            .collect();
        Ok(self.new_obj(Obj::Dict(pairs)))
    }

    /// The items of `v` if it is a list, else none.
    fn list_items(&self, v: Option<&Value>) -> &[Value] {
        match v.and_then(|v| self.obj(v)) {
            Some(Obj::List(l)) => l,
            _ => &[],
        }
    }

    /// Validates a tensor's rebuild arguments.
    pub(super) fn layout(&self, meta: &TensorMeta) -> Result<Layout> {
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
        let shape = self.dims(&a[2], "size")?;
        let stride = self.dims(&a[3], "stride")?;
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

    /// A size or stride tuple (`what` names it in errors).
    fn dims(&self, v: &Value, what: &str) -> Result<Vec<usize>> {
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
    }
}
