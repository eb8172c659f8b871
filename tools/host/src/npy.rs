//! NumPy `.npy` output.

use anyhow::{ensure, Context, Result};
use npyz::WriterBuilder;
use std::path::Path;

/// Writes a `rows x cols` f32 array (C order) to `path`.
pub fn write_f32_matrix(
    path: impl AsRef<Path>,
    rows: usize,
    cols: usize,
    data: &[f32],
) -> Result<()> {
    let path = path.as_ref();
    ensure!(
        data.len() == rows * cols,
        "{} values for a {rows}x{cols} array",
        data.len()
    );
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[rows as u64, cols as u64])
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .extend(data.iter().copied())
        .with_context(|| format!("cannot write {}", path.display()))?;
    writer
        .finish()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads a 2-D f32 `.npy` written by [`write_f32_matrix`] (or NumPy): `(rows, cols, data)`.
pub fn read_f32_matrix(path: impl AsRef<Path>) -> Result<(usize, usize, Vec<f32>)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{} is not a .npy file", path.display()))?;
    let shape = npy.shape().to_vec();
    ensure!(
        shape.len() == 2,
        "{} has {} dimensions, expected 2",
        path.display(),
        shape.len()
    );
    let data: Vec<f32> = npy
        .into_vec()
        .with_context(|| format!("{} does not hold f32", path.display()))?;
    Ok((shape[0] as usize, shape[1] as usize, data))
}
