//! `alexnet export-c`.

use alexnet_host::c_export::{c_header, c_name_for};
use alexnet_host::BlobFile;
use anyhow::{Context, Result};
use std::path::Path;

pub fn run(model: &Path, output: &Path, name: Option<&str>) -> Result<()> {
    let file = BlobFile::read(model)?;
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let name = name.map_or_else(|| c_name_for(&stem), str::to_string);
    let source = model.file_name().map_or_else(
        || model.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let header = c_header(file.bytes(), &name, &source)?;
    alexnet_host::atomic::write_atomic(output, header.as_bytes())
        .with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!(
        "{} ({} bytes) written to {} as `{name}`, {}_LEN, {}_ARCH",
        model.display(),
        file.bytes().len(),
        output.display(),
        name.to_ascii_uppercase(),
        name.to_ascii_uppercase()
    );
    Ok(())
}
