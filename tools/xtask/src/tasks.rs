//! The tasks.

use crate::process::{cargo, root, run, run_tee, step, timed};
use crate::summary::{self, Summary};
use crate::{c_api, readme, setup};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// `cargo xtask test`: every check a submission must pass.
pub fn test() -> Result<(), String> {
    let start = Instant::now();
    setup::all()?;
    let mut timings = Vec::new();
    let mut check = |title: &str, cmd: &mut Command| timed(&mut timings, title, || run(cmd));
    check("format", cargo().args(["fmt", "--all", "--check"]))?;
    check(
        "clippy, warnings as errors",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    check(
        "tests of every crate (the firmware under QEMU among them)",
        cargo().args(["test", "--workspace"]),
    )?;
    let firmware = root().join("firmware-example");
    check(
        "firmware: format",
        cargo().current_dir(&firmware).args(["fmt", "--check"]),
    )?;
    check(
        "firmware and its README example: clippy, warnings as errors",
        cargo().current_dir(&firmware).args([
            "clippy",
            "--release",
            "--quiet",
            "--bins",
            "--examples",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    check(
        "firmware: clippy with the dsp feature",
        cargo().current_dir(&firmware).args([
            "clippy",
            "--release",
            "--quiet",
            "--features",
            "dsp",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    check(
        "the board support crate (firmware-support): format",
        cargo()
            .current_dir(root().join("firmware-support"))
            .args(["fmt", "--check"]),
    )?;
    // The board crates beside the Cortex-M4F example: one crate per board, each linted alike.
    for (board, dir) in [
        ("Cortex-M33 firmware", "firmware-an524"),
        ("Cortex-M3 firmware", "firmware-an385"),
    ] {
        let dir = root().join(dir);
        check(
            &format!(
                "{board} ({}): format",
                dir.file_name().unwrap_or_default().to_string_lossy()
            ),
            cargo().current_dir(&dir).args(["fmt", "--check"]),
        )?;
        check(
            &format!("{board}: clippy, warnings as errors"),
            cargo().current_dir(&dir).args([
                "clippy",
                "--release",
                "--quiet",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
    }
    check(
        "alexnet-core builds for a Cortex-M4F with no std and no alloc",
        cargo().args([
            "build",
            "-p",
            "alexnet-core",
            "--target",
            setup::EMBEDDED_TARGET,
        ]),
    )?;
    check(
        "... and with its defmt feature",
        cargo().args([
            "build",
            "-p",
            "alexnet-core",
            "--features",
            "defmt",
            "--target",
            setup::EMBEDDED_TARGET,
        ]),
    )?;
    let panic_check = root().join("core/panic-check");
    check(
        "no panic path in alexnet-core and its C API: a Cortex-M binary whose panic handler \
         cannot link",
        cargo()
            .current_dir(&panic_check)
            .args(["build", "--release", "--quiet"]),
    )?;
    check(
        "... and with the dsp feature",
        cargo().current_dir(&panic_check).args([
            "build",
            "--release",
            "--quiet",
            "--features",
            "dsp",
        ]),
    )?;
    check(
        "... and for the Cortex-M3 (thumbv7m-none-eabi: no FPU, no DSP)",
        cargo().current_dir(&panic_check).args([
            "build",
            "--release",
            "--quiet",
            "--target",
            "thumbv7m-none-eabi",
        ]),
    )?;
    check(
        "host-train with the nccl feature: clippy (NCCL loads at run time, so no CUDA needed)",
        cargo().args([
            "clippy",
            "-p",
            "host-train",
            "--features",
            "nccl",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    check(
        "benchmarks compile",
        cargo().args(["bench", "-p", "alexnet-benches", "--no-run"]),
    )?;
    check(
        "API docs, rustdoc warnings (broken links among them) as errors",
        cargo()
            .args(["doc", "--no-deps", "--workspace", "--quiet"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    timed(
        &mut timings,
        "C API: include/alexnet.h is what cbindgen makes of the source",
        c_api::check_header,
    )?;
    timed(
        &mut timings,
        "C API: format, clippy (host and Cortex-M), warnings as errors",
        c_api::lint,
    )?;
    timed(
        &mut timings,
        "C API: static libraries for the host, the Cortex-M4F and the Cortex-M3",
        c_api::libraries,
    )?;
    timed(
        &mut timings,
        "README's firmware snippet: verbatim in firmware-example/examples/readme.rs, which \
         runs under QEMU",
        || {
            readme::check(&root())?;
            readme_example(&firmware)
        },
    )?;
    timed(
        &mut timings,
        "the GPU kit's run.sh --cpu, on the workspace's build",
        || crate::gpu_kit::dry_run(false),
    )?;
    eprintln!(
        "\nall checks passed in {:.0} s:",
        start.elapsed().as_secs_f64()
    );
    for (title, secs) in timings {
        eprintln!("  {secs:>7.1} s  {title}");
    }
    Ok(())
}

/// Builds the README's snippet as a firmware (`firmware-example/examples/readme.rs`), runs it
/// under QEMU and shows its decoded log; fails unless it classified every test image.
fn readme_example(firmware: &Path) -> Result<(), String> {
    // Its own target folder, as tests/firmware.rs builds the firmware: the dependencies built
    // for the device are shared, the host's target folder is not touched.
    let target = firmware.join("target");
    let out = cargo()
        .current_dir(firmware)
        .args([
            "run",
            "--release",
            "--quiet",
            "--example",
            "readme",
            "--target-dir",
        ])
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo for the README example: {e}"))?;
    let elf = target
        .join(setup::EMBEDDED_TARGET)
        .join("release/examples/readme");
    let mut decode = Command::new("defmt-print")
        .arg("-e")
        .arg(&elf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start defmt-print: {e}"))?;
    // defmt-print reads to the end of its input: close it after writing.
    let written = decode
        .stdin
        .take()
        .ok_or("defmt-print has no stdin")?
        .write_all(&out.stdout);
    let log = decode
        .wait_with_output()
        .map_err(|e| format!("defmt-print: {e}"))?;
    let log = String::from_utf8_lossy(&log.stdout);
    written.map_err(|e| format!("defmt-print: {e}"))?;
    eprint!("{log}");
    if out.status.success() && log.contains("DONE") {
        Ok(())
    } else {
        Err(format!(
            "the README example failed under QEMU ({}); its log is above",
            out.status
        ))
    }
}

/// `cargo xtask bench`: the benchmarks with their peers (libtorch, ONNX Runtime) in one run,
/// then `bench-summary`'s ratio tables and the roofline (`benches/roofline.rs`).
pub fn bench() -> Result<(), String> {
    setup::build_tools()?;
    setup::debian_packages(&[(
        setup::DATASET_PACKAGE,
        Path::new(setup::FASHION_MNIST_DIR).join("t10k-images-idx3-ubyte.gz"),
    )])?;
    setup::python_peers()?;
    step(
        "the benchmarks: the core, libtorch and ONNX Runtime in one run (about 15 minutes)",
        || run(cargo().args(["bench", "-p", "alexnet-benches", "--bench", "forward"])),
    )?;
    let bench_bin = |bin| {
        run(cargo().args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "alexnet-benches",
            "--bin",
            bin,
        ]))
    };
    bench_bin("bench-summary")?;
    step(
        "the roofline: the paper and torchvision nets' layers against this machine's measured peak",
        || bench_bin("roofline"),
    )
}

/// `cargo xtask quant-peer`: `tests/quant_peer.rs`'s long comparison (torchvision's net), in
/// release mode, its table shown.
pub fn quant_peer() -> Result<(), String> {
    setup::build_tools()?;
    setup::python_peers()?;
    step(
        "int8 against ONNX Runtime's static int8 on torchvision's net (a few minutes)",
        || {
            run(cargo().args([
                "test",
                "--release",
                "-p",
                "alexnet-tests",
                "--test",
                "quant_peer",
                "--",
                "--ignored",
                "--nocapture",
            ]))
        },
    )
}

/// `cargo xtask firmware`: builds the firmware, runs it under QEMU and checks it against the
/// host (the tests `tests/firmware.rs`, `tests/firmware_an385.rs` and
/// `tests/firmware_an524.rs`, with their reports shown).
pub fn firmware() -> Result<(), String> {
    setup::all()?;
    step(
        "firmware on a Cortex-M4F under QEMU, checked against the host",
        || firmware_test(None).map(|_| ()),
    )?;
    let board_test = |test: &str| {
        let mut cmd = cargo();
        cmd.args([
            "test",
            "--release",
            "-p",
            "alexnet-tests",
            "--test",
            test,
            "--",
            "--nocapture",
        ]);
        run(&mut cmd)
    };
    step(
        "the micro net's integer path on a Cortex-M3 (no FPU, no DSP) under QEMU, checked \
         against the host",
        || board_test("firmware_an385"),
    )?;
    step(
        "the paper and torchvision nets in int8 and the paper net in f32 on a Cortex-M33 \
         under QEMU (weights in DDR), checked against the host",
        || board_test("firmware_an524"),
    )
}

/// Runs `tests/firmware.rs` with its report shown; `models`: a folder with `micro.blob` and
/// `micro-int8.blob` to embed instead of the untrained net.
fn firmware_test(models: Option<&std::path::Path>) -> Result<String, String> {
    let mut cmd = cargo();
    if let Some(dir) = models {
        cmd.env("ALEXNET_FIRMWARE_MODELS", dir);
    }
    run_tee(cmd.args([
        "test",
        "--release",
        "-p",
        "alexnet-tests",
        "--test",
        "firmware",
        "--",
        "--nocapture",
    ]))
}

/// What `cargo xtask demo` trains, where.
pub struct DemoOptions {
    /// Training epochs.
    pub epochs: u32,
    /// host-train's `--devices` (CPU when `None`).
    pub devices: Option<String>,
    /// An ImageNet-style folder to train the paper net on, after the small net.
    pub paper_data: Option<PathBuf>,
}

/// `cargo xtask demo`: the main job, end to end.
pub fn demo(options: &DemoOptions) -> Result<(), String> {
    let epochs = options.epochs;
    let devices = options.devices.clone().unwrap_or_else(|| "cpu".into());
    let start = Instant::now();
    let mut timings: Vec<(String, f64)> = Vec::new();
    timed(
        &mut timings,
        "setup: what a fresh machine lacks (Rust target, Debian packages, libtorch venv)",
        setup::all,
    )?;
    timed(
        &mut timings,
        "building the alexnet CLI and quantize (release)",
        || {
            run(cargo().args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "alexnet-cli",
                "-p",
                "alexnet-quantize",
                "-p",
                "host-train",
            ]))
        },
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = target.join("release/alexnet");
    let quantize_bin = target.join("release/quantize");
    let train_bin = target.join("release/host-train");
    let dir = root().join("runs").join(timestamp());
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let alexnet = |args: &[&str]| run(Command::new(&bin).args(args));
    let fm = |f: &str| format!("{}/{f}", setup::FASHION_MNIST_DIR);

    timed(
        &mut timings,
        "alexnet init --arch paper: the 2012 net with the paper's random initialization",
        || {
            alexnet(&[
                "init",
                "--arch",
                "paper",
                "--seed",
                "0",
                "-o",
                &path("paper.blob"),
            ])
        },
    )?;
    timed(&mut timings, "alexnet info paper.blob", || {
        alexnet(&["info", &path("paper.blob")])
    })?;
    timed(
        &mut timings,
        "real test images: the first 10 of Fashion-MNIST's test set, as PNG",
        || {
            let args = [
                "--labels",
                &fm("t10k-labels-idx1-ubyte.gz"),
                "--count",
                "10",
            ];
            alexnet(
                &[
                    &["extract-idx", &fm("t10k-images-idx3-ubyte.gz")][..],
                    &args,
                    &["-o", &path("images-28")],
                ]
                .concat(),
            )?;
            alexnet(
                &[
                    &["extract-idx", &fm("t10k-images-idx3-ubyte.gz")][..],
                    &args,
                    &["--scale", "9", "-o", &path("images-252")],
                ]
                .concat(),
            )
        },
    )?;
    let images = |sub: &str| -> Result<Vec<String>, String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join(sub))
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path().to_string_lossy().into_owned()))
            .collect();
        v.sort();
        Ok(v)
    };
    let big = images("images-252")?;
    timed(
        &mut timings,
        "alexnet infer paper.blob (untrained weights: the classes are noise until trained)",
        || {
            let mut args = vec![
                "infer".to_string(),
                path("paper.blob"),
                "--top".into(),
                "3".into(),
            ];
            args.extend(big.iter().take(2).cloned());
            args.extend(["--logits-out".to_string(), path("paper-logits.npy")]);
            run(Command::new(&bin).args(&args))
        },
    )?;
    let quantize = |args: &[&str]| run(Command::new(&quantize_bin).args(args));
    timed(
        &mut timings,
        "quantize paper.blob to int8, calibrated on 10 real images (integer-only LRN)",
        || {
            quantize(&[
                &path("paper.blob"),
                "--calibration",
                &path("images-252"),
                "--samples",
                "10",
                "-o",
                &path("paper-int8.blob"),
                "--report-json",
                &path("paper-int8-report.json"),
            ])
        },
    )?;
    timed(
        &mut timings,
        "alexnet diff: f32 against int8, layer by layer, on one image",
        || {
            alexnet(&[
                "diff",
                &path("paper.blob"),
                &path("paper-int8.blob"),
                &big[0],
            ])
        },
    )?;
    let epochs_arg = epochs.to_string();
    timed(
        &mut timings,
        &format!(
            "host-train: the small net trained on Fashion-MNIST on {devices} ({epochs} epochs), \
             evaluated, exported"
        ),
        || {
            run(Command::new(&train_bin).args([
                "train",
                "--arch",
                "micro",
                "--epochs",
                &epochs_arg,
                "--devices",
                &devices,
                "--out",
                &path("micro-train"),
            ]))
        },
    )?;
    let (eval_f32, eval_int8, arena_f32, arena_int8) = timed(
        &mut timings,
        "the trained small net: quantize on 500 training images, f32 and int8 accuracy through \
         the core on the 10,000 test images, infer in int8",
        || {
            std::fs::copy(dir.join("micro-train/model.blob"), dir.join("micro.blob"))
                .map_err(|e| format!("cannot copy the trained model: {e}"))?;
            // Calibrated on training images: the test images are only for measuring.
            quantize(&[
                &path("micro.blob"),
                "--calibration",
                &fm("train-images-idx3-ubyte.gz"),
                "--samples",
                "500",
                "--pack-dsp",
                "-o",
                &path("micro-int8.blob"),
                "--report-json",
                &path("micro-int8-report.json"),
            ])?;
            let arena = |blob: &str| -> Result<f64, String> {
                let text = run_tee(Command::new(&bin).args(["info", &path(blob)]))?;
                summary::number_after(&text, "arena")
                    .ok_or_else(|| "no arena in alexnet info".into())
            };
            let (arena_f32, arena_int8) = (arena("micro.blob")?, arena("micro-int8.blob")?);
            // Accuracy of both through the core (not libtorch) on the 10,000 test images.
            let eval = |blob: &str| -> Result<summary::Eval, String> {
                let text = run_tee(Command::new(&bin).args([
                    "eval",
                    &path(blob),
                    "--images",
                    &fm("t10k-images-idx3-ubyte.gz"),
                    "--labels",
                    &fm("t10k-labels-idx1-ubyte.gz"),
                ]))?;
                summary::parse_eval(&text).ok_or_else(|| "no accuracy in alexnet eval".into())
            };
            let (eval_f32, eval_int8) = (eval("micro.blob")?, eval("micro-int8.blob")?);
            let mut args = vec![
                "infer".to_string(),
                path("micro-int8.blob"),
                "--top".into(),
                "3".into(),
            ];
            args.extend(images("images-28")?);
            run(Command::new(&bin).args(&args))?;
            Ok((eval_f32, eval_int8, arena_f32, arena_int8))
        },
    )?;
    let firmware = timed(
        &mut timings,
        "the trained small net on a Cortex-M4F under QEMU (generic and DSP kernels), every logit \
         compared with the host",
        || firmware_test(Some(&dir)),
    )?;
    if let Some(data) = &options.paper_data {
        paper_on_folder(
            &mut timings,
            data,
            &devices,
            &epochs_arg,
            &dir,
            &bin,
            &quantize_bin,
            &train_bin,
        )?;
    }
    let device = |features: &str| {
        summary::parse_device(&firmware, features).ok_or_else(|| {
            format!("no firmware report for features {features} in the test's output")
        })
    };
    let size = |name: &str| {
        std::fs::metadata(dir.join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let table = Summary {
        eval_f32,
        eval_int8,
        blob_f32: size("micro.blob"),
        blob_int8: size("micro-int8.blob"),
        arena_f32,
        arena_int8,
        generic: device("[]")?,
        dsp: device("[\"dsp\"]")?,
        timings,
    }
    .to_markdown();
    let summary_path = dir.join("summary.md");
    std::fs::write(&summary_path, &table)
        .map_err(|e| format!("cannot write {}: {e}", summary_path.display()))?;
    eprintln!(
        "\n==> summary (also in {})\n\n{table}",
        summary_path.display()
    );
    eprintln!(
        "demo finished in {:.0} s; everything it made is in {}",
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

/// The demo's `--paper DIR` part: the 2012 net trained on an ImageNet-style folder (its
/// validation top-1/top-5, centre crop and ten patches, are host-train's report), quantized on
/// training images, and f32 against int8 through the core on two validation images.
#[allow(clippy::too_many_arguments)]
fn paper_on_folder(
    timings: &mut Vec<(String, f64)>,
    data: &std::path::Path,
    devices: &str,
    epochs: &str,
    dir: &std::path::Path,
    bin: &std::path::Path,
    quantize_bin: &std::path::Path,
    train_bin: &std::path::Path,
) -> Result<(), String> {
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let data_arg = data.to_string_lossy().into_owned();
    timed(
        timings,
        &format!(
            "host-train: the paper net on {} ({devices}, {epochs} epochs)",
            data.display()
        ),
        || {
            run(Command::new(train_bin).args([
                "train",
                "--arch",
                "paper",
                "--source",
                "folder",
                "--data",
                &data_arg,
                "--epochs",
                epochs,
                "--devices",
                devices,
                "--out",
                &path("paper-train"),
            ]))
        },
    )?;
    timed(
        timings,
        "the trained paper net: quantize on 100 training images, f32 and int8 on validation images",
        || {
            run(Command::new(quantize_bin).args([
                &path("paper-train/model.blob"),
                "--calibration",
                &data.join("train").to_string_lossy(),
                "--samples",
                "100",
                "-o",
                &path("paper-trained-int8.blob"),
            ]))?;
            let mut val: Vec<String> = walk_images(&data.join("val"));
            val.sort();
            for blob in ["paper-train/model.blob", "paper-trained-int8.blob"] {
                let mut args = vec!["infer".to_string(), path(blob), "--top".into(), "3".into()];
                args.extend(val.iter().take(2).cloned());
                run(Command::new(bin).args(&args))?;
            }
            Ok(())
        },
    )
}

/// JPEG and PNG files under `dir`, recursively.
fn walk_images(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk_images(&p));
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}

/// `YYYYMMDD-HHMMSS` in UTC, for run folders.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_has_the_documented_shape() {
        let t = super::timestamp();
        assert_eq!(t.len(), 15, "{t}");
        assert!(t.starts_with("20") && t.as_bytes()[8] == b'-', "{t}");
    }
}
