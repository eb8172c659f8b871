//! `alexnet convert` (weights from PyTorch, safetensors or ONNX to an f32 blob) and
//! `alexnet export` (an f32 blob back to safetensors or ONNX).

use alexnet_core::model::ChannelOrder;
use alexnet_host::spec::MeanSpec;
use alexnet_host::weights::{self, Format};
use alexnet_host::ModelSpec;
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};

/// What `convert` may set beyond the weights: the blob's preprocessing and labels, which a
/// weights file rarely carries.
#[derive(clap::Args, Debug, Default)]
pub struct Overrides {
    /// Architecture name to store for a net that is not built in (at most 16 bytes).
    #[arg(long)]
    pub name: Option<String>,
    /// Class labels, one per line, in output order.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Shorter side after resizing, before the centre crop (0: no resize).
    #[arg(long)]
    pub resize: Option<u32>,
    /// Factor on 0..=255 pixels (1/255 for torchvision's nets).
    #[arg(long)]
    pub pixel_scale: Option<f32>,
    /// Mean subtracted per channel after scaling, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub mean: Option<Vec<f32>>,
    /// Standard deviation divided per channel after the mean, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub std: Option<Vec<f32>>,
    /// Channel order the net expects: rgb, bgr or gray.
    #[arg(long)]
    pub channel_order: Option<String>,
}

impl Overrides {
    fn apply(&self, spec: &mut ModelSpec) -> Result<()> {
        let channels = spec.input.c;
        if let Some(name) = &self.name {
            spec.name = name.clone();
        }
        if let Some(path) = &self.labels {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read labels {}", path.display()))?;
            let labels: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            let classes = spec.arch().classes();
            ensure!(
                labels.len() == classes,
                "{} has {} labels; the net has {classes} classes",
                path.display(),
                labels.len()
            );
            spec.labels = Some(labels);
        }
        let p = &mut spec.preprocess;
        if let Some(r) = self.resize {
            p.resize = r;
        }
        if let Some(s) = self.pixel_scale {
            p.pixel_scale = s;
        }
        if let Some(order) = &self.channel_order {
            p.channel_order = match order.as_str() {
                "rgb" => ChannelOrder::Rgb,
                "bgr" => ChannelOrder::Bgr,
                "gray" | "grey" => ChannelOrder::Gray,
                other => bail!("channel order {other:?}: rgb, bgr or gray"),
            };
        }
        ensure!(
            p.channel_order.channels() == channels,
            "channel order {:?} gives {} channels; the net takes {channels}",
            p.channel_order,
            p.channel_order.channels()
        );
        let per_channel = |what: &str, v: &Vec<f32>| {
            ensure!(
                v.len() == channels,
                "--{what} has {} values; the net has {channels} channels",
                v.len()
            );
            Ok(())
        };
        if let Some(m) = &self.mean {
            per_channel("mean", m)?;
            p.mean = MeanSpec::PerChannel(m.clone());
        }
        if let Some(s) = &self.std {
            per_channel("std", s)?;
            p.std = Some(s.clone());
        }
        Ok(())
    }
}

pub fn convert(
    input: &Path,
    arch: Option<&str>,
    overrides: &Overrides,
    output: &Path,
) -> Result<()> {
    let arch = arch
        .map(|a| alexnet_host::profile::by_name(a).map(|p| p.arch))
        .transpose()?;
    let format = weights::detect(input)?;
    let mut spec = weights::load(input, arch)?;
    overrides.apply(&mut spec)?;
    let blob = spec.to_blob()?;
    // The blob must parse and run as the core reads it before it is written.
    alexnet_core::Model::parse(&blob)
        .map_err(|e| anyhow::anyhow!("the converted model does not parse: {e}"))?;
    alexnet_host::atomic::write_atomic(output, &blob)?;
    let built_in = alexnet_host::profile::of(&spec.arch()).is_some();
    println!(
        "{} ({format}) -> {}: the {} net{}, {} parameters, f32, {:.1} MB; labels: {}",
        input.display(),
        output.display(),
        spec.name,
        if built_in { " (built in)" } else { "" },
        crate::thousands(spec.arch().param_count() as u64),
        blob.len() as f64 / 1e6,
        spec.labels
            .as_ref()
            .map_or("none".to_string(), |l| l.len().to_string()),
    );
    if format == Format::Onnx && !built_in && overrides.mean.is_none() {
        eprintln!(
            "note: the graph is not a built-in net; its preprocessing is the default for {} \
             channels unless the file carries its own: give --resize, --pixel-scale, --mean, \
             --std as the model was trained",
            spec.input.c
        );
    }
    Ok(())
}

pub fn export(model: &Path, output: &Path) -> Result<()> {
    let file = weights::open_f32_blob(model, None)
        .context("export takes f32 models: export the f32 model an int8 one was quantized from")?;
    let spec = ModelSpec::from_model(&file.model()?);
    let kind = output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match kind.as_deref() {
        Some("onnx") => alexnet_host::onnx::save(&spec, output)?,
        Some("safetensors") => alexnet_host::safetensors_io::save(&spec, output)?,
        _ => bail!(
            "{}: the output's extension says the format: .onnx or .safetensors",
            output.display()
        ),
    }
    println!(
        "{} -> {} ({:.1} MB)",
        model.display(),
        output.display(),
        std::fs::metadata(output).map_or(0.0, |m| m.len() as f64 / 1e6)
    );
    Ok(())
}
