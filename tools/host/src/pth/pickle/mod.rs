//! A small, bounded pickle machine. It runs only the opcodes in [`opcode::Opcode`] and
//! calls no Python: the few globals `torch.save` uses are interpreted by
//! [`super::torch`], every other call yields an inert [`Obj::Other`], so a hostile pickle
//! can do no more than fail to load.

mod opcode;

use super::torch::{StorageDecl, TensorMeta};
use anyhow::{anyhow, bail, ensure, Context, Result};
use opcode::Opcode;
use std::collections::HashMap;

/// A pickled value. Everything with identity lives in [`Vm::objs`] and is referred to by
/// index, so memo references share (as in Python) and nothing is ever deep-copied or
/// dropped recursively.
#[derive(Clone, Debug, PartialEq)]
pub(in crate::pth) enum Value {
    None,
    Bool(bool),
    Int(i128),
    /// An integer too wide for i128 (never part of a tensor's description).
    BigInt,
    Float(f64),
    Obj(usize),
}

/// An object the machine built.
#[derive(Debug)]
pub(in crate::pth) enum Obj {
    Str(String),
    /// Bytes, of which only the length is kept.
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

/// The machine's heap and memo; one may run several pickles in a row (the legacy format's
/// header pickles).
#[derive(Default)]
pub(in crate::pth) struct Vm {
    pub(in crate::pth) objs: Vec<Obj>,
    /// The storages the pickle declared, in order.
    pub(in crate::pth) storages: Vec<StorageDecl>,
    memo: HashMap<u32, Value>,
    /// Items copied by calls, bounded by [`super::torch::MAX_WORK`].
    pub(in crate::pth) work: usize,
}

impl Vm {
    pub(in crate::pth) fn obj(&self, v: &Value) -> Option<&Obj> {
        match v {
            Value::Obj(i) => self.objs.get(*i),
            _ => None,
        }
    }

    pub(in crate::pth) fn str(&self, v: &Value) -> Option<&str> {
        match self.obj(v) {
            Some(Obj::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// An int, or a bool as Python would use it.
    pub(in crate::pth) fn int(&self, v: &Value) -> Option<i128> {
        match v {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i128),
            _ => None,
        }
    }

    /// The object index of `v` if it is a tensor.
    pub(in crate::pth) fn tensor_index(&self, v: &Value) -> Option<usize> {
        match v {
            Value::Obj(i) if matches!(self.objs.get(*i), Some(Obj::Tensor(_))) => Some(*i),
            _ => None,
        }
    }

    /// `d[key]` for a dict with string keys.
    pub(in crate::pth) fn dict_get(&self, d: &Value, key: &str) -> Option<&Value> {
        match self.obj(d) {
            Some(Obj::Dict(items)) => items
                .iter()
                .find(|(k, _)| self.str(k) == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// What a value is, for error messages.
    pub(in crate::pth) fn describe(&self, v: &Value) -> String {
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

    pub(in crate::pth) fn new_obj(&mut self, o: Obj) -> Value {
        self.objs.push(o);
        Value::Obj(self.objs.len() - 1)
    }

    /// Pushes a new object.
    fn push_obj(&mut self, stack: &mut Stack, o: Obj) {
        let v = self.new_obj(o);
        stack.items.push(v);
    }

    /// The object at the top of the stack, for the opcodes that update one in place.
    fn top_obj(&mut self, stack: &Stack, at: usize) -> Result<&mut Obj> {
        match stack.items.last() {
            Some(Value::Obj(i)) => self.objs.get_mut(*i).context("dangling object"),
            _ => bail!("malformed pickle at byte {at}: no object to update"),
        }
    }

    /// Runs one pickle starting at `data[pos]`; returns its value and where it ended.
    pub(in crate::pth) fn run(&mut self, data: &[u8], pos: usize) -> Result<(Value, usize)> {
        let mut r = Reader { data, pos };
        let mut stack = Stack::default();
        loop {
            let at = r.pos;
            let op = Opcode::try_from(r.byte()?)
                .map_err(|b| anyhow!("unknown pickle opcode 0x{b:02x} at byte {at}"))?;
            match op {
                Opcode::Proto => {
                    let p = r.byte()?;
                    ensure!(p <= 5, "unsupported pickle protocol {p}");
                }
                Opcode::Frame => {
                    r.take(8)?;
                }
                Opcode::Stop => return Ok((stack.pop(at)?, r.pos)),
                Opcode::Mark => stack.marks.push(stack.items.len()),
                Opcode::Pop => {
                    stack.pop(at)?;
                }
                Opcode::PopMark => {
                    stack.pop_mark(at)?;
                }
                Opcode::Dup => {
                    let v = stack
                        .items
                        .last()
                        .cloned()
                        .context("malformed pickle: DUP of nothing")?;
                    stack.items.push(v);
                }
                Opcode::EmptyDict => self.push_obj(&mut stack, Obj::Dict(Vec::new())),
                Opcode::EmptyList | Opcode::EmptySet => {
                    self.push_obj(&mut stack, Obj::List(Vec::new()))
                }
                Opcode::EmptyTuple => self.push_obj(&mut stack, Obj::Tuple(Vec::new())),
                Opcode::Tuple | Opcode::FrozenSet => {
                    let items = stack.pop_mark(at)?;
                    self.push_obj(&mut stack, Obj::Tuple(items));
                }
                Opcode::List => {
                    let items = stack.pop_mark(at)?;
                    self.push_obj(&mut stack, Obj::List(items));
                }
                Opcode::Dict => {
                    let items = stack.pop_mark(at)?;
                    self.push_obj(&mut stack, Obj::Dict(pairs(items, at)?));
                }
                Opcode::Tuple1 | Opcode::Tuple2 | Opcode::Tuple3 => {
                    let n = op as usize - Opcode::Tuple1 as usize + 1;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(stack.pop(at)?);
                    }
                    items.reverse();
                    self.push_obj(&mut stack, Obj::Tuple(items));
                }
                Opcode::BinPut | Opcode::LongBinPut | Opcode::Memoize => {
                    let idx = match op {
                        Opcode::BinPut => u32::from(r.byte()?),
                        Opcode::LongBinPut => r.u32()?,
                        _ => u32::try_from(self.memo.len()).context("memo too large")?,
                    };
                    let v = stack
                        .items
                        .last()
                        .cloned()
                        .context("malformed pickle: PUT of nothing")?;
                    self.memo.insert(idx, v);
                }
                Opcode::BinGet | Opcode::LongBinGet => {
                    let idx = if op == Opcode::BinGet {
                        u32::from(r.byte()?)
                    } else {
                        r.u32()?
                    };
                    let v = self.memo.get(&idx).cloned().with_context(|| {
                        format!("malformed pickle: memo {idx} is unset (byte {at})")
                    })?;
                    stack.items.push(v);
                }
                Opcode::BinUnicode
                | Opcode::ShortBinUnicode
                | Opcode::BinUnicode8
                | Opcode::ShortBinString
                | Opcode::BinString => {
                    let n = match op {
                        Opcode::BinUnicode | Opcode::BinString => u64::from(r.u32()?),
                        Opcode::BinUnicode8 => r.u64()?,
                        _ => u64::from(r.byte()?),
                    };
                    let raw = r.take(usize::try_from(n).context("string too long")?)?;
                    let s = if matches!(op, Opcode::ShortBinString | Opcode::BinString) {
                        // Python 2's str: Latin-1.
                        raw.iter().map(|&b| b as char).collect()
                    } else {
                        std::str::from_utf8(raw)
                            .map_err(|_| anyhow!("malformed pickle: invalid UTF-8 at byte {at}"))?
                            .to_string()
                    };
                    self.push_obj(&mut stack, Obj::Str(s));
                }
                Opcode::BinBytes
                | Opcode::ShortBinBytes
                | Opcode::BinBytes8
                | Opcode::ByteArray8 => {
                    let n = match op {
                        Opcode::BinBytes => u64::from(r.u32()?),
                        Opcode::ShortBinBytes => u64::from(r.byte()?),
                        _ => r.u64()?,
                    };
                    let n = usize::try_from(n).context("bytes too long")?;
                    r.take(n)?;
                    self.push_obj(&mut stack, Obj::Bytes(n));
                }
                Opcode::Global => {
                    let module = r.line()?;
                    let name = r.line()?;
                    self.push_obj(&mut stack, Obj::Global(module, name));
                }
                Opcode::StackGlobal => {
                    let name = stack.pop(at)?;
                    let module = stack.pop(at)?;
                    let (Some(m), Some(n)) = (self.str(&module), self.str(&name)) else {
                        bail!("malformed pickle: STACK_GLOBAL of non-strings at byte {at}");
                    };
                    let g = Obj::Global(m.to_string(), n.to_string());
                    self.push_obj(&mut stack, g);
                }
                Opcode::BinPersId => {
                    let pid = stack.pop(at)?;
                    let v = self
                        .persistent_load(&pid)
                        .with_context(|| format!("unsupported persistent id at byte {at}"))?;
                    stack.items.push(v);
                }
                Opcode::BinInt => {
                    let v = i32::from_le_bytes(r.array()?);
                    stack.items.push(Value::Int(v.into()));
                }
                Opcode::BinInt1 => {
                    let v = r.byte()?;
                    stack.items.push(Value::Int(v.into()));
                }
                Opcode::BinInt2 => {
                    let v = u16::from_le_bytes(r.array()?);
                    stack.items.push(Value::Int(v.into()));
                }
                Opcode::Long1 | Opcode::Long4 => {
                    let n = if op == Opcode::Long1 {
                        usize::from(r.byte()?)
                    } else {
                        let n = i32::from_le_bytes(r.array()?);
                        usize::try_from(n).context("malformed pickle: negative LONG4 length")?
                    };
                    stack.items.push(long(r.take(n)?));
                }
                Opcode::NewTrue => stack.items.push(Value::Bool(true)),
                Opcode::NewFalse => stack.items.push(Value::Bool(false)),
                Opcode::None => stack.items.push(Value::None),
                Opcode::BinFloat => {
                    let v = f64::from_be_bytes(r.array()?);
                    stack.items.push(Value::Float(v));
                }
                Opcode::Reduce | Opcode::NewObj => {
                    // func(*args), or cls.__new__(cls, *args): the same for the classes
                    // torch.save's pickles construct.
                    let args = stack.pop(at)?;
                    let func = stack.pop(at)?;
                    let v = self.call(&func, &args, 0)?;
                    stack.items.push(v);
                }
                Opcode::NewObjEx => {
                    let _kwargs = stack.pop(at)?;
                    let args = stack.pop(at)?;
                    let cls = stack.pop(at)?;
                    let v = self.call(&cls, &args, 0)?;
                    stack.items.push(v);
                }
                Opcode::Build => {
                    // The state of an OrderedDict (`_metadata`), a tensor or a Parameter is
                    // not needed.
                    let _state = stack.pop(at)?;
                    self.top_obj(&stack, at)?;
                }
                Opcode::SetItem => {
                    let v = stack.pop(at)?;
                    let k = stack.pop(at)?;
                    match self.top_obj(&stack, at)? {
                        Obj::Dict(items) => items.push((k, v)),
                        _ => bail!("malformed pickle: SETITEM on a non-dict at byte {at}"),
                    }
                }
                Opcode::SetItems => {
                    let items = stack.pop_mark(at)?;
                    let d = self.top_obj(&stack, at)?;
                    let kv = pairs(items, at)?;
                    match d {
                        Obj::Dict(items) => items.extend(kv),
                        _ => bail!("malformed pickle: SETITEMS on a non-dict at byte {at}"),
                    }
                }
                Opcode::Append => {
                    let v = stack.pop(at)?;
                    match self.top_obj(&stack, at)? {
                        Obj::List(items) => items.push(v),
                        _ => bail!("malformed pickle: APPEND to a non-list at byte {at}"),
                    }
                }
                Opcode::Appends | Opcode::AddItems => {
                    let items = stack.pop_mark(at)?;
                    match self.top_obj(&stack, at)? {
                        Obj::List(list) => list.extend(items),
                        _ => bail!("malformed pickle: APPENDS to a non-list at byte {at}"),
                    }
                }
            }
        }
    }
}

/// The pickle's bytes and the read position; every read is bounds-checked.
struct Reader<'d> {
    data: &'d [u8],
    pos: usize,
}

impl<'d> Reader<'d> {
    fn take(&mut self, n: usize) -> Result<&'d [u8]> {
        let pos = self.pos;
        let s = self
            .data
            .get(pos..)
            .and_then(|d| d.get(..n))
            .with_context(|| format!("truncated pickle at byte {pos}"))?;
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A newline-terminated ASCII line (GLOBAL's operands), at most 256 bytes.
    fn line(&mut self) -> Result<String> {
        let pos = self.pos;
        let rest = self.data.get(pos..).unwrap_or_default();
        let n = rest
            .iter()
            .take(256)
            .position(|&b| b == b'\n')
            .with_context(|| format!("malformed pickle: unterminated GLOBAL at byte {pos}"))?;
        let s = std::str::from_utf8(&rest[..n])
            .map_err(|_| anyhow!("malformed pickle: GLOBAL is not text at byte {pos}"))?
            .to_string();
        self.pos += n + 1;
        Ok(s)
    }
}

/// The stack and its marks (stack heights). Nothing below the topmost mark may be popped
/// except by the opcodes that pop to the mark.
#[derive(Default)]
struct Stack {
    items: Vec<Value>,
    marks: Vec<usize>,
}

impl Stack {
    fn pop(&mut self, at: usize) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.items.pop() {
            Some(v) if self.items.len() >= floor => Ok(v),
            _ => bail!("malformed pickle: stack underflow at byte {at}"),
        }
    }

    /// The items above the topmost mark, which is removed.
    fn pop_mark(&mut self, at: usize) -> Result<Vec<Value>> {
        let m = self
            .marks
            .pop()
            .with_context(|| format!("malformed pickle: no MARK before byte {at}"))?;
        ensure!(
            m <= self.items.len(),
            "malformed pickle: stack underflow at byte {at}"
        );
        Ok(self.items.split_off(m))
    }
}

/// LONG1 / LONG4's operand: little-endian two's complement.
fn long(raw: &[u8]) -> Value {
    match raw.len() {
        0 => Value::Int(0),
        n if n > 16 => Value::BigInt,
        n => {
            let neg = raw[n - 1] & 0x80 != 0;
            let mut b = [if neg { 0xff } else { 0 }; 16];
            b[..n].copy_from_slice(raw);
            Value::Int(i128::from_le_bytes(b))
        }
    }
}

/// Alternating keys and values as pairs.
fn pairs(items: Vec<Value>, at: usize) -> Result<Vec<(Value, Value)>> {
    ensure!(
        items.len().is_multiple_of(2),
        "malformed pickle: odd number of dict items at byte {at}"
    );
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{archive, assert_errors};
    use super::*;

    /// The value of one pickle, and where it ended.
    fn run(p: &[u8]) -> Result<(Value, usize, Vm)> {
        let mut vm = Vm::default();
        let (v, end) = vm.run(p, 0)?;
        Ok((v, end, vm))
    }

    #[test]
    fn values_strings_and_memo_come_out_as_python_has_them() {
        // LONG1 of -2, BININT of -7, BININT2, a big LONG1.
        for (p, want) in [
            (&b"\x80\x02\x8a\x01\xfe."[..], Value::Int(-2)),
            (b"J\xf9\xff\xff\xff.", Value::Int(-7)),
            (b"M\x01\x02.", Value::Int(0x0201)),
            (b"\x8a\x00.", Value::Int(0)),
            (&[&[0x8a, 17][..], &[1; 17], b"."].concat(), Value::BigInt),
            (b"G\x3f\xf8\0\0\0\0\0\0.", Value::Float(1.5)),
        ] {
            assert_eq!(run(p).unwrap().0, want, "{p:?}");
        }
        // A memoized list appended to after it was shared: both references see the item.
        let (v, end, vm) = run(b"\x80\x02]q\x00h\x00K\x07a\x86.rest").unwrap();
        assert_eq!(end, 12, "STOP ends the pickle; what follows is not read");
        let Some(Obj::Tuple(t)) = vm.obj(&v) else {
            panic!("{}", vm.describe(&v));
        };
        assert_eq!(t[0], t[1]);
        assert_eq!(vm.describe(&t[0]), "a list of 1");
        // Python 2 strings are Latin-1.
        let (v, _, vm) = run(b"U\x02\xe9t.").unwrap();
        assert_eq!(vm.str(&v), Some("\u{e9}t"));
    }

    #[test]
    fn malformed_pickles_are_errors_at_their_byte() {
        for (p, needle) in [
            (&b"\x80\x06."[..], "unsupported pickle protocol 6"),
            (b"X\x05\0\0\0ab", "truncated pickle at byte 5"),
            (b"\x8c\x02\xff\xfe.", "invalid UTF-8 at byte 0"),
            (b"cmodule", "unterminated GLOBAL at byte 1"),
            (b"(K\x01K\x02K\x03d.", "odd number of dict items at byte 7"),
            (b"K\x01K\x02s.", "no object to update"),
            (b"\x8b\xff\xff\xff\xff.", "negative LONG4 length"),
            (b"1.", "no MARK before byte 0"),
            (b"K\x01K\x02R.", "calling an int (1)"),
            (b"", "truncated pickle at byte 0"),
        ] {
            let e = format!("{:#}", run(p).err().unwrap());
            assert!(e.contains(needle), "{p:?}: {e:?} lacks {needle:?}");
        }
    }

    #[test]
    fn malformed_pickles_in_an_archive_name_the_file() {
        assert_errors(vec![
            (
                archive(b"\x80\x02\xff.", &[], "little"),
                &["unknown pickle opcode 0xff at byte 2"],
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
        ]);
    }
}
