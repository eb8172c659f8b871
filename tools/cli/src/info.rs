//! `alexnet info`.

use crate::thousands;
use alexnet_core::model::{format, Mean};
use alexnet_core::{Layer, Model};
use alexnet_host::BlobFile;
use anyhow::Result;
use std::path::Path;

pub fn run(path: &Path) -> Result<()> {
    let file = BlobFile::read(path)?;
    let model = file.model()?;
    print!("{}", describe(&model, file.bytes().len(), path));
    for warning in non_finite_warnings(&model) {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// The whole report, as text.
pub fn describe(model: &Model<'_>, blob_len: usize, path: &Path) -> String {
    use std::fmt::Write;
    let arch = model.arch();
    let plan = model.plan();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model       {} ({:.1} MB, format v{}, CRC-32 ok)",
        path.display(),
        blob_len as f64 / 1e6,
        format::VERSION
    );
    let _ = writeln!(s, "arch        {}, input {}", arch.name, arch.input);
    let precision = match model.precision() {
        alexnet_core::Precision::F32 => "f32".to_string(),
        alexnet_core::Precision::Int8 => {
            let q = model.quantization().input;
            format!(
                "int8 (input scale {}, zero point {})",
                q.scale, q.zero_point
            )
        }
    };
    let _ = writeln!(s, "precision   {precision}");
    let p = model.preprocess();
    let resize = if p.resize == 0 {
        "no resize".to_string()
    } else {
        format!("shorter side to {}", p.resize)
    };
    let mean = match p.mean {
        Mean::None => "no mean".to_string(),
        Mean::PerChannel(m) => format!("mean {m:?}"),
        Mean::PerPixel(_) => "per-pixel mean image".to_string(),
    };
    let std = p.std.map(|s| format!(", std {s:?}")).unwrap_or_default();
    let _ = writeln!(
        s,
        "preprocess  {resize}, centre crop {}x{}, {:?}, pixel x {}, {mean}{std}",
        arch.input.h, arch.input.w, p.channel_order, p.pixel_scale
    );
    let _ = writeln!(
        s,
        "labels      {}",
        model
            .labels()
            .map_or("none".to_string(), |l| format!("{} classes", l.len()))
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:>3}  {:<8} {:<34} {:>12} {:>12} {:>14}",
        "#", "layer", "details", "output", "params", "MACs"
    );
    for step in arch.walk().flatten() {
        let name = arch
            .param_layer_name(step.index)
            .map_or(step.layer.kind_name().to_string(), |n| n.to_string());
        let params = step.layer.weight_len(step.input).unwrap_or(0) + step.layer.bias_len();
        let macs = step.layer.macs(step.input, step.output);
        let blank_if_zero = |n: u64| if n == 0 { String::new() } else { thousands(n) };
        let row = format!(
            "{:>3}  {:<8} {:<34} {:>12} {:>12} {:>14}",
            step.index,
            name,
            details(&step.layer),
            step.output.to_string(),
            blank_if_zero(params as u64),
            blank_if_zero(macs)
        );
        let _ = writeln!(s, "{}", row.trim_end());
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "total       {} parameters, {} MACs ({:.1} M) per image",
        thousands(plan.params as u64),
        thousands(plan.macs),
        plan.macs as f64 / 1e6
    );
    let _ = writeln!(
        s,
        "arena       {} bytes, fused conv/pool chains ({} to see every layer whole; largest activation {} values, {} classes out)",
        thousands(model.arena_bytes() as u64),
        thousands(model.observed_arena_bytes() as u64),
        thousands(plan.largest_activation as u64),
        model.classes()
    );
    s
}

/// A layer's hyper-parameters in one short line.
fn details(layer: &Layer) -> String {
    match layer {
        Layer::Conv(c) => format!(
            "{} @ {}x{} /{} pad {}{}",
            c.out_channels,
            c.kernel,
            c.kernel,
            c.stride,
            c.padding,
            if c.groups > 1 {
                format!(" groups {}", c.groups)
            } else {
                String::new()
            }
        ),
        Layer::Lrn(l) => format!(
            "n={} k={} a={} b={} {}",
            l.size,
            l.k,
            l.alpha,
            l.beta,
            match l.convention {
                alexnet_core::arch::LrnConvention::Paper => "(paper)",
                alexnet_core::arch::LrnConvention::AlphaOverN => "(alpha/n)",
            }
        ),
        Layer::MaxPool(p) => format!("{}x{} /{}", p.window, p.window, p.stride),
        Layer::AdaptiveAvgPool { out_h, out_w } => format!("adaptive to {out_h}x{out_w}"),
        Layer::Linear { out_features } => format!("{out_features} out"),
        Layer::Dropout { p } => format!("p={p} (inference: identity)"),
        Layer::Softmax => "(applied to the logits by infer)".to_string(),
        Layer::Relu | Layer::Flatten => String::new(),
    }
}

/// One line per tensor that holds NaN or infinite values: the f32 path still computes, but
/// the user should know.
pub fn non_finite_warnings(model: &Model<'_>) -> Vec<String> {
    let arch = model.arch();
    let mut out = Vec::new();
    for i in 0..arch.layers.len() {
        let (Some(p), Some(name)) = (model.params(i), arch.param_layer_name(i)) else {
            continue;
        };
        for (role, values) in [("weight", p.weight), ("bias", p.bias)] {
            let bad = values.iter().filter(|v| !v.is_finite()).count();
            if bad > 0 {
                out.push(format!("{name}.{role} has {bad} NaN or infinite values"));
            }
        }
    }
    out
}
