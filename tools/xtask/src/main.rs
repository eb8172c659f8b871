//! The task runner: `cargo xtask <task>`. Std only: it drives cargo, rustup, apt and the
//! project's own binaries, and installs what a fresh machine lacks before using it.

mod setup;
mod tasks;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  demo     the main job end to end: make a paper-net blob, show its layer table,
           classify real images with it, quantize it to int8 and compare the two
           paths; train the small net on Fashion-MNIST (CPU), quantize it, run it
           --epochs N   training epochs of the small net (default 3)
  test     every check: fmt, clippy, all tests of all crates (the firmware under QEMU
           among them), the no_std build for thumbv7em-none-eabihf
  firmware build the Cortex-M4F firmware, run it under QEMU, check it bit for bit
           against the host and report flash, RAM and instructions per inference
  setup    install what the other tasks need (rustup target, Debian packages,
           defmt-print)
";

/// `--epochs N` of the demo.
fn demo_epochs(args: &[String]) -> Result<u32, String> {
    match args {
        [] => Ok(3),
        [flag, n] if flag == "--epochs" => n
            .parse()
            .ok()
            .filter(|&n: &u32| n > 0)
            .ok_or_else(|| format!("--epochs takes a positive number, not {n:?}")),
        other => Err(format!("unknown demo options {other:?}\n\n{USAGE}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => match demo_epochs(&args[1..]) {
            Ok(epochs) => tasks::demo(epochs),
            Err(e) => Err(e),
        },
        Some("test") => tasks::test(),
        Some("firmware") => tasks::firmware(),
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
