//! `alexnet diff`: the f32 and int8 paths side by side, layer by layer, on one image.

use alexnet_host::image_input::load_image;
use alexnet_host::quantize::Comparison;
use alexnet_host::BlobFile;
use anyhow::{Context, Result};
use std::path::Path;

pub fn run(f32_path: &Path, int8_path: &Path, image: &Path) -> Result<()> {
    let f32_file = BlobFile::read(f32_path)?;
    let f32_model = f32_file.model()?;
    let int8_file = BlobFile::read(int8_path)?;
    let int8_model = int8_file.model()?;
    let mut comparison = Comparison::new(&f32_model, &int8_model).with_context(|| {
        format!(
            "cannot compare {} (f32) with {} (int8)",
            f32_path.display(),
            int8_path.display()
        )
    })?;
    let input = load_image(image, f32_model.preprocess(), f32_model.arch().input)?;
    let logits = comparison.add(&input)?;
    println!(
        "{:>3}  {:<12} {:>12} {:>12} {:>12} {:>9} {:>6}",
        "#", "layer", "output", "max |f32|", "max |err|", "SQNR dB", "LSB"
    );
    for e in comparison.layers() {
        println!(
            "{:>3}  {:<12} {:>12} {:>12.5} {:>12.5} {:>9.2} {:>6.2}",
            e.index,
            e.name,
            e.shape.to_string(),
            e.max_ref,
            e.max_err,
            e.sqnr_db(),
            e.max_err_steps()
        );
    }
    let [b32, b8] = logits.top::<5>();
    let label = |c: usize| {
        f32_model
            .labels()
            .and_then(|l| l.get(c))
            .unwrap_or("")
            .to_string()
    };
    let top5 = |best: [usize; 5]| {
        best.iter()
            .map(|&c| format!("{c} {}", label(c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("top-5 f32 : {}", top5(b32));
    println!("top-5 int8: {}", top5(b8));
    println!(
        "top-1 {}",
        if b32[0] == b8[0] { "agrees" } else { "DIFFERS" }
    );
    Ok(())
}
