//! `alexnet diff`: the f32 and int8 paths side by side, layer by layer, on one image.

use alexnet_core::RunOptions;
use alexnet_host::image_input::load_image;
use alexnet_host::quantize::report::{computes, reference_index};
use alexnet_host::BlobFile;
use anyhow::{ensure, Result};
use std::path::Path;

pub fn run(f32_path: &Path, int8_path: &Path, image: &Path) -> Result<()> {
    let f32_file = BlobFile::read(f32_path)?;
    let f32_model = f32_file.model()?;
    let int8_file = BlobFile::read(int8_path)?;
    let int8_model = int8_file.model()?;
    ensure!(
        f32_model.precision() == alexnet_core::Precision::F32,
        "{} is not an f32 model",
        f32_path.display()
    );
    ensure!(
        int8_model.precision() == alexnet_core::Precision::Int8,
        "{} is not an int8 model (make one with `quantize`)",
        int8_path.display()
    );
    ensure!(
        f32_model.arch() == int8_model.arch(),
        "the two blobs hold different architectures ({} and {})",
        f32_model.arch().name,
        int8_model.arch().name
    );
    let input = load_image(image, f32_model.preprocess(), f32_model.arch().input)?;
    let layers = f32_model.layers();
    let mut acts: Vec<Vec<f32>> = vec![Vec::new(); layers.len()];
    let mut arena = vec![0u8; f32_model.observed_arena_bytes()];
    let mut logits = vec![0.0f32; f32_model.classes()];
    f32_model
        .run(
            &input,
            &mut arena,
            &mut logits,
            RunOptions::new().observe(&mut |i, _, a| acts[i] = a.to_vec()),
        )
        .map_err(anyhow::Error::msg)?;
    let mut codes = vec![0i8; int8_model.input_len()];
    int8_model
        .quantize_input(&input, &mut codes)
        .map_err(anyhow::Error::msg)?;
    let mut arena8 = vec![0u8; int8_model.observed_arena_bytes()];
    let mut q_logits = vec![0i8; int8_model.classes()];
    let q = int8_model.quantization();
    let arch = f32_model.arch();
    println!(
        "{:>3}  {:<12} {:>12} {:>12} {:>12} {:>9} {:>6}",
        "#", "layer", "output", "max |f32|", "max |err|", "SQNR dB", "LSB"
    );
    let mut rows = Vec::new();
    int8_model
        .run(
            &codes,
            &mut arena8,
            &mut q_logits,
            RunOptions::new().observe(&mut |i, shape, a| {
                let Some(layer) = layers.get(i) else { return };
                if !computes(layer) {
                    return;
                }
                let r = &acts[reference_index(layers, i)];
                let p = q.layers[i].output;
                let (mut sig, mut noise, mut max_ref, mut max_err) =
                    (0.0f64, 0.0f64, 0.0f64, 0.0f64);
                for (&c, &x) in a.iter().zip(r) {
                    let deq = (c as i32 - p.zero_point) as f64 * p.scale as f64;
                    let e = (x as f64 - deq).abs();
                    sig += (x as f64).powi(2);
                    noise += e * e;
                    max_ref = max_ref.max((x as f64).abs());
                    max_err = max_err.max(e);
                }
                let name = arch
                    .param_layer_name(i)
                    .map_or(layer.kind_name().to_string(), |n| n.to_string());
                let name = if reference_index(layers, i) != i {
                    format!("{name}+relu")
                } else {
                    name
                };
                let sqnr = 10.0 * (sig / noise.max(f64::MIN_POSITIVE)).log10();
                rows.push(format!(
                    "{i:>3}  {name:<12} {:>12} {max_ref:>12.5} {max_err:>12.5} {sqnr:>9.2} {:>6.2}",
                    shape.to_string(),
                    max_err / p.scale as f64
                ));
            }),
        )
        .map_err(anyhow::Error::msg)?;
    for r in rows {
        println!("{r}");
    }
    let mut deq = vec![0.0f32; q_logits.len()];
    int8_model
        .dequantize_logits(&q_logits, &mut deq)
        .map_err(anyhow::Error::msg)?;
    let (mut b32, mut b8) = ([0usize; 5], [0usize; 5]);
    alexnet_core::postprocess::top_k(&logits, &mut b32);
    alexnet_core::postprocess::top_k(&deq, &mut b8);
    let label = |c: usize| {
        f32_model
            .labels()
            .and_then(|l| l.get(c))
            .unwrap_or("")
            .to_string()
    };
    println!(
        "top-5 f32 : {}",
        b32.iter()
            .map(|&c| format!("{c} {}", label(c)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "top-5 int8: {}",
        b8.iter()
            .map(|&c| format!("{c} {}", label(c)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "top-1 {}",
        if b32[0] == b8[0] { "agrees" } else { "DIFFERS" }
    );
    Ok(())
}
