//! Finding the state_dict in the unpickled object: the object itself when it is a dict of
//! tensors, or a dict of tensors nested in a training checkpoint (`{"state_dict": ...,
//! "epoch": ...}`, `"model"`, ...).

use super::pickle::{Obj, Value, Vm};
use anyhow::{bail, Context, Result};
use std::collections::HashSet;

/// Deepest nesting of checkpoint dicts searched for the state_dict.
const MAX_SEARCH_DEPTH: usize = 4;

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

/// The (name, tensor object) pairs of the state_dict in `root`, in the file's order.
pub(super) fn find_state_dict(vm: &Vm, root: &Value) -> Result<Vec<(String, usize)>> {
    if let Some(entries) = search(vm, root, 0, &mut HashSet::new())? {
        return Ok(entries);
    }
    match vm.obj(root) {
        Some(Obj::Dict(items)) => {
            let keys: Vec<String> = items
                .iter()
                .take(12)
                .map(|(k, _)| vm.str(k).map_or_else(|| vm.describe(k), str::to_string))
                .collect();
            bail!("no state_dict found: a dict of non-tensors (keys {keys:?})")
        }
        _ => bail!("holds {}, not a state_dict", vm.describe(root)),
    }
}

/// The state_dict in `v` or in a dict nested in it; `seen` keeps shared dicts from being
/// searched twice.
fn search(
    vm: &Vm,
    v: &Value,
    depth: usize,
    seen: &mut HashSet<usize>,
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
        // Otherwise a dict of tensors under any key, if there is exactly one.
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

#[cfg(test)]
mod tests {
    use super::super::test_support::{archive, assert_errors, f32_bytes, pickle, tensor, Item};

    #[test]
    fn what_is_not_a_state_dict_is_named() {
        let four = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
        assert_errors(vec![
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
                archive(b"\x80\x02K\x05.", &[], "little"),
                &["holds an int (5), not a state_dict"],
            ),
            (
                archive(b"\x80\x02).", &[], "little"),
                &["holds a tuple of 0, not a state_dict"],
            ),
        ]);
    }
}
