//! The zip format `torch.save` writes by default since torch 1.6: `<archive>/data.pkl` is
//! the pickled object, `<archive>/data/<key>` the raw bytes of each storage,
//! `<archive>/byteorder` their byte order (absent in files older than torch 1.10: little).

use super::pickle::Vm;
use super::rebuild::{materialize, StorageSource};
use super::state_dict::find_state_dict;
use super::NamedTensor;
use anyhow::{anyhow, bail, ensure, Context, Result};
use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read};

/// The zip format's local file header signature.
pub(super) const MAGIC: &[u8] = b"PK\x03\x04";

type Archive<'a> = zip::ZipArchive<Cursor<&'a [u8]>>;

/// The state_dict of a zip-format checkpoint.
pub(super) fn parse(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    let limit = bytes.len() as u64;
    let mut zip =
        Archive::new(Cursor::new(bytes)).map_err(|e| anyhow!("not a valid zip archive ({e})"))?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let prefix = archive_prefix(&names)?;
    let byteorder = format!("{prefix}byteorder");
    if names.contains(&byteorder) {
        match read_entry(&mut zip, &byteorder, limit)?.as_slice() {
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

/// The folder holding `data.pkl` (`archive/`, or the file's stem; empty at the top level),
/// refusing TorchScript archives, which hold a module's code rather than a state_dict.
fn archive_prefix(names: &[String]) -> Result<String> {
    let prefix = names
        .iter()
        .filter_map(|n| n.strip_suffix("data.pkl"))
        .filter(|p| p.is_empty() || p.find('/') == Some(p.len() - 1))
        .min_by_key(|p| p.len())
        .context("a zip archive without data.pkl: not written by torch.save")?;
    if names
        .iter()
        .any(|n| *n == format!("{prefix}constants.pkl") || n.starts_with(&format!("{prefix}code/")))
    {
        bail!(
            "is a TorchScript archive (torch.jit.save), not a state_dict; save \
             `model.state_dict()` with torch.save instead"
        );
    }
    Ok(prefix.to_string())
}

/// Reads one entry of the archive, refusing one that claims more bytes than the file has.
fn read_entry(zip: &mut Archive<'_>, name: &str, limit: u64) -> Result<Vec<u8>> {
    let mut f = zip
        .by_name(name)
        .map_err(|e| anyhow!("cannot open {name} in the archive ({e})"))?;
    ensure!(
        f.size() <= limit,
        "{name} in the archive declares {} bytes, more than the file's {limit}",
        f.size()
    );
    let mut out = Vec::with_capacity(f.size() as usize);
    // The declared size may lie: never read more than the limit.
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

/// The storages of an archive, each read (and decompressed) once when a tensor first needs
/// it and dropped after the last.
struct ZipStorages<'a> {
    zip: Archive<'a>,
    prefix: String,
    names: HashSet<String>,
    cache: HashMap<String, Vec<u8>>,
    /// Bytes read from storages so far.
    total: u64,
    /// The file's length.
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

#[cfg(test)]
mod tests {
    use super::super::test_support::{
        archive, assert_errors, data, error, f32_bytes, pickle, read, tensor, unzip, write_zip,
    };
    use super::*;

    #[test]
    fn crafted_archives_read_or_give_clear_errors() {
        let four = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
        let ok = pickle(&[("w", tensor("0", 4, 0, &[2, 2], &[1, 2]))]);
        // The well-formed baseline, transposed.
        let t = parse(&archive(&ok, &[("0", &four)], "little")).unwrap();
        assert_eq!(t[0].values, [1.0, 3.0, 2.0, 4.0]);
        assert_errors(vec![
            (archive(&ok, &[("0", &four)], "big"), &["big-endian"]),
            (
                archive(&ok, &[], "little"),
                &["tensor w", "storage \"0\" is missing"],
            ),
            (
                write_zip(&[("a/b.txt".into(), b"hi".to_vec())]),
                &["without data.pkl"],
            ),
            (
                b"PK\x03\x04 not really".to_vec(),
                &["not a valid zip archive"],
            ),
        ]);
    }

    #[test]
    fn torchscript_archive_is_refused() {
        let e = format!(
            "{:#}",
            super::super::read_state_dict(&data("torchscript.pt")).unwrap_err()
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
}
