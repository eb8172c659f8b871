//! The tests' fixtures and a small checkpoint writer, to reach the cases torch.save never
//! writes.

use super::read_state_dict;
use crate::spec::ModelSpec;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

/// A fixture of `tests/data` (written by `tests/data/make_pth_fixtures.py`).
pub(super) fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub(super) fn read(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

/// The error reading `bytes` from a file named bad.pth; it must name the file.
pub(super) fn error(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.pth");
    std::fs::write(&path, bytes).unwrap();
    let e = format!("{:#}", read_state_dict(&path).unwrap_err());
    assert!(e.contains("bad.pth"), "{e}");
    e
}

/// Each file's error contains each of its needles.
pub(super) fn assert_errors(cases: Vec<(Vec<u8>, &[&str])>) {
    for (bytes, needles) in cases {
        let e = error(&bytes);
        for n in needles {
            assert!(e.contains(n), "{e:?} lacks {n:?}");
        }
    }
}

/// A state_dict entry to pickle.
pub(super) enum Item<'a> {
    /// `_rebuild_tensor_v2` of a storage.
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

/// A tensor of a `FloatStorage`.
pub(super) fn tensor<'a>(
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
pub(super) fn pickle(entries: &[(&str, Item<'_>)]) -> Vec<u8> {
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
pub(super) fn archive(pickle: &[u8], storages: &[(&str, &[u8])], byteorder: &str) -> Vec<u8> {
    let mut entries = vec![("archive/data.pkl".to_string(), pickle.to_vec())];
    entries.push(("archive/byteorder".into(), byteorder.as_bytes().to_vec()));
    for (k, b) in storages {
        entries.push((format!("archive/data/{k}"), b.to_vec()));
    }
    write_zip(&entries)
}

pub(super) fn write_zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The entries of a zip file, to rewrite it.
pub(super) fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
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

pub(super) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A spec's weights as a zip-format checkpoint, each tensor in its own storage.
pub(super) fn write_spec(spec: &ModelSpec) -> Vec<u8> {
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
                tensor(key, values.len() as i64, 0, shape, stride),
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
