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
    let (shape, data) = read::<f32>(path)?;
    ensure!(
        shape.len() == 2,
        "{} has {} dimensions, expected 2",
        path.display(),
        shape.len()
    );
    Ok((shape[0], shape[1], data))
}

/// Reads a `.npy` array of any shape holding `T` (f32, u8, ...): `(shape, data)` in C order.
pub fn read<T: npyz::Deserialize>(path: impl AsRef<Path>) -> Result<(Vec<usize>, Vec<T>)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{} is not a .npy file", path.display()))?;
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    let data = npy.into_vec().with_context(|| {
        format!(
            "{} does not hold {}",
            path.display(),
            std::any::type_name::<T>()
        )
    })?;
    Ok((shape, data))
}
