//! The task runner: `cargo xtask <task>`. Std only: it drives cargo, rustup, apt and the
//! project's own binaries, and installs what a fresh machine lacks before using it.

mod c_api;
mod gpu_kit;
mod miri;
mod process;
mod readme;
mod setup;
mod summary;
mod tasks;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  demo     the main job end to end: make a paper-net blob, show its layer table,
           classify real images with it, quantize it to int8 and compare the two
           paths; train the small net on Fashion-MNIST (CPU), quantize it, run it
           --epochs N     training epochs (default 3)
           --devices D    where to train: cpu (default), cuda:0, or the paper's two
                          towers on two GPUs: cuda:0,cuda:1
           --paper DIR    also train the 2012 paper net on an ImageNet-style folder
                          (DIR/train/<class>/*.jpg, DIR/val/<class>/*.jpg), quantize
                          it and compare f32 with int8 on validation images
  test     every check: fmt, clippy, all tests of all crates (the firmware under QEMU
           among them, the C API's host and firmware examples), the no_std build for
           thumbv7em-none-eabihf, the panic-freedom proof of the core and its C API,
           the C API's header, lint and static libraries, the API docs (rustdoc
           warnings as errors), the README's firmware snippet under QEMU
  firmware build the Cortex-M4F firmware (the micro net), the Cortex-M3 one (its
           integer path, no FPU, no DSP) and the Cortex-M33 one (the paper and
           torchvision nets in int8, weights in DDR), run them under QEMU, check them
           bit for bit against the host (logits and each layer's digest) and report
           flash, RAM, stack and instructions per inference, per layer (the M33
           also runs the paper net in f32, 244 MB of weights in DDR)
  gpu-kit  the GPU check kit in target/gpu-kit/kit (at most 60 MiB): host-train built
           against the GPU image's PyTorch 2.11 (tch 0.24), the core's CLI, part of
           Fashion-MNIST, the PyTorch-eager peer and run.sh, which proves the trainer on
           a CUDA machine in one run (docs/training.md)
           --check        then run the kit's run.sh --cpu here
           --dry-run      only run.sh --cpu on the workspace's own build (no second
                          torch; part of `test`)
  bench    the benchmarks (criterion): the core against libtorch and ONNX Runtime
           (installed into .venv), whole nets, the paper net's layers, two threads,
           batch 8; then the ratio tables (bench-summary) and the roofline (each layer of
           the paper and torchvision nets against this machine's measured peak:
           benches/roofline.rs)
  quant-peer
           the core's int8 quantization against ONNX Runtime's static int8 (QDQ,
           per-channel) on torchvision's net from a torch.save checkpoint: logits SQNR
           and top-1/top-5 agreement with f32 on photographs (the micro net's
           comparison runs in `test`)
  c-lib    the C API's static library for this machine, the Cortex-M4F (with the
           DSP kernels) and the Cortex-M3, with its header, in core/ffi/target/dist/
  c-header rewrite core/ffi/include/alexnet.h from the C API's source (cbindgen)
  miri     the core's unit tests and the portable kernel tests under Miri
           (undefined behaviour), on the nightly toolchain
  setup    install what the other tasks need (rustup target, Debian packages,
           defmt-print, the torch wheel for libtorch)
";

/// The demo's options.
fn demo_options(args: &[String]) -> Result<tasks::DemoOptions, String> {
    let mut options = tasks::DemoOptions {
        epochs: 3,
        devices: None,
        paper_data: None,
    };
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || {
            rest.next()
                .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))
        };
        match flag.as_str() {
            "--epochs" => {
                let n = value()?;
                options.epochs = n
                    .parse()
                    .ok()
                    .filter(|&n: &u32| n > 0)
                    .ok_or_else(|| format!("--epochs takes a positive number, not {n:?}"))?;
            }
            "--devices" => options.devices = Some(value()?.clone()),
            "--paper" => {
                let dir = std::path::PathBuf::from(value()?);
                for sub in ["train", "val"] {
                    if !dir.join(sub).is_dir() {
                        return Err(format!(
                            "--paper {}: no {sub}/ folder (expected {sub}/<class>/<images>)",
                            dir.display()
                        ));
                    }
                }
                options.paper_data = Some(dir);
            }
            other => return Err(format!("unknown demo option {other:?}\n\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => match demo_options(&args[1..]) {
            Ok(options) => tasks::demo(&options),
            Err(e) => Err(e),
        },
        Some("test") => tasks::test(),
        Some("firmware") => match args.get(1).map(String::as_str) {
            None => tasks::firmware(),
            Some(other) => Err(format!("unknown firmware option {other:?}\n\n{USAGE}")),
        },
        Some("gpu-kit") => match args.get(1).map(String::as_str) {
            None => gpu_kit::build(false),
            Some("--check") => gpu_kit::build(true),
            Some("--dry-run") => gpu_kit::dry_run(true),
            Some(other) => Err(format!("unknown gpu-kit option {other:?}\n\n{USAGE}")),
        },
        Some("bench") => tasks::bench(),
        Some("quant-peer") => tasks::quant_peer(),
        Some("c-lib") => c_api::libraries(),
        Some("c-header") => c_api::write_header(),
        Some("miri") => miri::all(),
        Some("setup") => setup::all(),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown task {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::demo_options;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn demo_options_parse_and_refuse_before_any_work() {
        let o = demo_options(&args(&["--devices", "cuda:0,cuda:1", "--epochs", "5"])).unwrap();
        assert_eq!((o.epochs, o.devices.as_deref()), (5, Some("cuda:0,cuda:1")));
        assert_eq!(demo_options(&[]).unwrap().epochs, 3);
        let err = |a: &[&str]| demo_options(&args(a)).err().unwrap_or_default();
        assert!(err(&["--epochs", "0"]).contains("positive number"));
        assert!(err(&["--epochs"]).contains("needs a value"));
        assert!(err(&["--gpu"]).contains("unknown demo option"));
        let dir = std::env::temp_dir().join(format!("xtask-paper-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("train")).unwrap();
        assert!(err(&["--paper", dir.to_str().unwrap()]).contains("no val/ folder"));
        std::fs::create_dir_all(dir.join("val")).unwrap();
        let o = demo_options(&args(&["--paper", dir.to_str().unwrap()])).unwrap();
        assert_eq!(o.paper_data.as_deref(), Some(dir.as_path()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
