//! `quantize`: turns f32 weights (a core blob, a safetensors file or a PyTorch checkpoint)
//! into an int8 blob,
//! calibrating activation ranges on real images, and reports what it cost per layer.

use alexnet_host::atomic::write_atomic;
use alexnet_host::quantize::{self, Method};
use alexnet_host::{dataset, profile, progress, weights, BlobFile};
use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    /// The smallest and largest value seen.
    Minmax,
    /// A percentile of the values (see --percentile): clips outliers.
    Percentile,
}

/// How the logits' range (the last layer's output) is chosen.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum LogitsArg {
    /// The smallest and largest logit seen: the top class is never clipped.
    Minmax,
    /// As the other layers (--method).
    Same,
    /// Whichever of min/max and the 99.99th, 99.9th and 99th percentiles gives the int8
    /// model the best top-1 agreement with f32 on the calibration images (min/max on ties).
    Best,
}

#[derive(Parser)]
#[command(
    name = "quantize",
    version,
    about = "Quantize f32 AlexNet weights to an int8 model blob"
)]
struct Args {
    /// f32 weights: a core blob (`alexnet init`, `host-train`), a safetensors file, or a
    /// PyTorch checkpoint (`.pth`/`.pt`, a torch.save'd state_dict such as torchvision's
    /// alexnet-owt-7be5be79.pth); told apart by content, whatever the file's name.
    weights: PathBuf,
    /// Architecture of a safetensors file or PyTorch checkpoint (paper, caffe, torchvision,
    /// micro); blobs carry their own, which must then be this one.
    #[arg(long)]
    arch: Option<String>,
    /// Calibration images: a folder of JPEG/PNG files (searched recursively) or an IDX file.
    #[arg(long)]
    calibration: PathBuf,
    /// Number of calibration images (spread evenly over a folder).
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// How activation ranges are chosen (min/max: closer to f32 on every net measured,
    /// docs/quantization.md).
    #[arg(long, value_enum, default_value = "minmax")]
    method: MethodArg,
    /// Percentile for --method percentile.
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// How the logits' range is chosen.
    #[arg(long, value_enum, default_value = "minmax")]
    logits: LogitsArg,
    /// Output int8 blob.
    #[arg(short, long)]
    output: PathBuf,
    /// Also write the report as JSON here.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// Add the convolution weights prepacked for the Cortex-M kernels (format version 3; the
    /// `SMLAD` kernel of the core's `dsp` feature and the `MLA` kernel of cores without DSP
    /// use them, the latter only with them): about 2x the convolutions' int8 bytes more
    /// flash, and no unpacking on the device.
    #[arg(long)]
    pack_dsp: bool,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    if !(50.0..=100.0).contains(&args.percentile) {
        bail!("--percentile must be in [50, 100], got {}", args.percentile);
    }
    let method = match args.method {
        MethodArg::Minmax => Method::MinMax,
        MethodArg::Percentile => Method::Percentile(args.percentile),
    };
    // The f32 weights are read where they lie: a core blob is mapped, and only the int8
    // model is built in memory; other formats are converted to a blob once, and only its
    // aligned copy is kept.
    let file = open_weights(&args)?;
    let f32_len = file.bytes().len();
    let model = file.model()?;
    quantize::check_finite(&model)?;
    let arch = model.arch();
    eprintln!(
        "loading up to {} calibration images from {}...",
        args.samples,
        args.calibration.display()
    );
    let samples = dataset::load(
        &args.calibration,
        args.samples,
        model.preprocess(),
        arch.input,
    )?;
    for (path, why) in &samples.skipped {
        eprintln!("warning: skipped {}: {why}", path.display());
    }
    let n = samples.inputs.len();
    eprintln!("calibrating {} on {n} images ({:?})...", arch.name, method);
    let bar = progress::bar(true, n as u64, "calibrating images");
    let cal = quantize::calibrate(&model, &samples.inputs, |k| bar.set_position(k as u64))?;
    bar.finish_and_clear();
    let candidates = match args.logits {
        LogitsArg::Minmax => vec![Method::MinMax],
        LogitsArg::Same => vec![method],
        LogitsArg::Best => [100.0, 99.99, 99.9, 99.0]
            .map(|p| {
                if p == 100.0 {
                    Method::MinMax
                } else {
                    Method::Percentile(p)
                }
            })
            .to_vec(),
    };
    let mut best: Option<(quantize::Report, BlobFile)> = None;
    for logits in candidates {
        let (mut int8, adjustments) = quantize::quantize_with_logits(&model, &cal, method, logits)?;
        if let Some(q) = int8.quant.as_mut() {
            q.packed_dsp = args.pack_dsp;
        }
        // The spec, its bytes and their aligned copy one after the other, not all at once
        // (`--logits best` also keeps the best model so far).
        let int8_file = {
            let bytes = int8.to_blob()?;
            drop(int8);
            BlobFile::from_bytes(&bytes, &args.output)
        };
        let int8_model = int8_file
            .model()
            .context("the quantized blob does not validate (a bug)")?;
        eprintln!("measuring int8 (logits by {logits:?}) against f32 on the calibration images...");
        let report = quantize::evaluate(
            &model,
            &int8_model,
            &adjustments,
            &format!("{method:?}, logits {logits:?}"),
            n,
            &samples.inputs,
        )?;
        if args.logits == LogitsArg::Best {
            eprintln!(
                "  logits by {logits:?}: top-1 agreement {:.1}%, top logit clipped on {:.1}%",
                report.top1_agreement * 100.0,
                report.top_logit_saturated * 100.0
            );
        }
        if best
            .as_ref()
            .is_none_or(|(b, _)| report.top1_agreement > b.top1_agreement)
        {
            best = Some((report, int8_file));
        }
    }
    let (report, int8_file) = best.context("no logits range to try")?;
    let int8_blob = int8_file.bytes();
    print!("{}", report.to_table());
    write_atomic(&args.output, int8_blob)?;
    println!(
        "wrote {} ({:.2} MB int8, f32 was {:.2} MB) in {:.1} s",
        args.output.display(),
        int8_blob.len() as f64 / 1e6,
        f32_len as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.report_json {
        let json = serde_json::to_string_pretty(&report)?;
        write_atomic(path, json.as_bytes())?;
        println!("report written to {}", path.display());
    }
    Ok(())
}

/// The f32 weights as a blob, whatever the file's format: a core blob mapped as it is
/// (refused if it is int8 or not the `--arch` net), other formats converted; `--arch` is needed
/// by the formats that do not name their net.
fn open_weights(args: &Args) -> Result<BlobFile> {
    let format = weights::detect(&args.weights)?;
    let arch = match &args.arch {
        Some(name) => Some(profile::by_name(name)?.arch),
        None if format.names_its_arch() => None,
        None => bail!("{format} needs --arch (paper, caffe, torchvision or micro)"),
    };
    if format != weights::Format::Blob {
        let spec = weights::load(&args.weights, arch)?;
        return Ok(BlobFile::from_bytes(&spec.to_blob()?, &args.weights));
    }
    weights::open_f32_blob(&args.weights, arch)
}
