//! Installing what the tasks need, only where it is missing.

use crate::process::{cargo, root, run, step};
use std::path::Path;
use std::process::Command;

/// The microcontroller target the core must build for (Cortex-M4F, M7).
pub const EMBEDDED_TARGET: &str = "thumbv7em-none-eabihf";
/// Every Rust target the tasks build for: the Cortex-M4F; the Cortex-M33 (`firmware-an524`);
/// the Cortex-M3 (no FPU, no DSP) that the C API's static library is built for too.
const RUST_TARGETS: [&str; 3] = [
    EMBEDDED_TARGET,
    "thumbv8m.main-none-eabihf",
    "thumbv7m-none-eabi",
];
/// Debian's Fashion-MNIST package and where it puts the data.
pub const DATASET_PACKAGE: &str = "dataset-fashion-mnist";
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// defmt-print decodes the firmware's log; its version matches the firmware's defmt.
const DEFMT_PRINT: (&str, &str) = ("defmt-print", "1.2.0");
/// cbindgen writes the C API's header (`cargo xtask c-header`, checked by `cargo xtask test`).
const CBINDGEN: (&str, &str) = ("cbindgen", "0.29.2");
/// The torch wheel whose libtorch `tch` 0.26 links.
pub const TORCH: &str = "torch==2.13.0";
/// The Python packages the tests and the benchmark compare against, in the project venv:
/// ONNX Runtime (CPU; the benchmark's second peer, and the ONNX round trip's runner), the
/// `onnx` package that builds the benchmark's models, and torchvision (its preprocessing is
/// what `tests/preprocess.rs` matches; 0.28.0 is the release built for torch 2.13.0).
const PYTHON_PEERS: [&str; 3] = ["onnxruntime==1.32.0", "onnx==1.23.2", "torchvision==0.28.0"];

/// Everything the tasks need.
pub fn all() -> Result<(), String> {
    rust_targets()?;
    build_tools()?;
    debian_packages(&[
        (
            DATASET_PACKAGE,
            Path::new(FASHION_MNIST_DIR).join("t10k-images-idx3-ubyte.gz"),
        ),
        (
            "qemu-system-arm",
            Path::new("/usr/bin/qemu-system-arm").to_path_buf(),
        ),
    ])?;
    cargo_tool(DEFMT_PRINT.0, DEFMT_PRINT.1)?;
    c_tools()?;
    python_peers()
}

/// What building the host crates needs beyond Rust: CMake, which builds the libjpeg-turbo
/// that `alexnet-host` decodes JPEGs with (from the `turbojpeg-sys` crate's bundled source),
/// and NASM for its SIMD code.
pub fn build_tools() -> Result<(), String> {
    debian_packages(&[
        ("cmake", Path::new("/usr/bin/cmake").to_path_buf()),
        ("nasm", Path::new("/usr/bin/nasm").to_path_buf()),
    ])
}

/// What the C API needs: cbindgen for its header, Debian's GCC for the Cortex-M (the C
/// firmware example), this machine's C compiler (the host examples), and the nightly
/// toolchain, whose `-Zsanitizer=address` instruments the library itself for the host
/// examples' AddressSanitizer run.
pub fn c_tools() -> Result<(), String> {
    nightly(&[])?;
    debian_packages(&[
        (
            "gcc-arm-none-eabi",
            Path::new("/usr/bin/arm-none-eabi-gcc").to_path_buf(),
        ),
        ("gcc", Path::new("/usr/bin/cc").to_path_buf()),
        ("make", Path::new("/usr/bin/make").to_path_buf()),
    ])?;
    cargo_tool(CBINDGEN.0, CBINDGEN.1)
}

/// `cargo install`s a tool unless `<tool> --version` already reports this version.
pub fn cargo_tool(name: &str, version: &str) -> Result<(), String> {
    let installed = Command::new(name).arg("--version").output();
    if installed.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(version)) {
        return Ok(());
    }
    step(
        &format!("installing {name} {version} (cargo install, once)"),
        || run(cargo().args(["install", "--locked", "--quiet", name, "--version", version])),
    )
}

/// A project-local Python venv with the torch wheel, and `.venv/libtorch` pointing at the
/// wheel's torch folder (include/ and lib/), which .cargo/config.toml hands to torch-sys.
pub fn libtorch() -> Result<(), String> {
    let venv = root().join(".venv");
    let link = venv.join("libtorch");
    if link.join("lib").join("libtorch_cpu.so").exists() {
        return Ok(());
    }
    let python = venv.join("bin").join("python");
    if !python.exists() {
        step("creating the project's Python venv (.venv)", || {
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        })?;
    }
    step(
        &format!("installing {TORCH} into .venv for libtorch (about 4.7 GB, once)"),
        || pip_install(&python, &[TORCH]),
    )?;
    let out = Command::new(&python)
        .args([
            "-c",
            "import os, torch; print(os.path.dirname(torch.__file__))",
        ])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "torch does not import: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let torch_dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&torch_dir, &link)
        .map_err(|e| format!("cannot link {} to {torch_dir}: {e}", link.display()))
}

/// `rustup target add`s each target not installed.
pub fn rust_targets() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    let listed = String::from_utf8_lossy(&installed.stdout).into_owned();
    let missing: Vec<&str> = RUST_TARGETS
        .into_iter()
        .filter(|t| !listed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(
        &format!("installing the Rust targets {}", missing.join(" ")),
        || {
            run(Command::new("rustup")
                .args(["target", "add"])
                .args(&missing))
        },
    )
}

/// The nightly toolchain with Miri and the standard library's source (Miri builds its own
/// sysroot from it).
pub fn miri() -> Result<(), String> {
    nightly(&["miri", "rust-src"])
}

/// The nightly toolchain (minimal profile) with `components`, unless rustup lists them all
/// as installed.
pub fn nightly(components: &[&str]) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", "nightly"])
        .output()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    let listed = String::from_utf8_lossy(&installed.stdout).into_owned();
    let has = |c: &str| listed.lines().any(|l| l.trim().starts_with(c));
    if installed.status.success() && components.iter().all(|c| has(c)) {
        return Ok(());
    }
    let what = if components.is_empty() {
        String::new()
    } else {
        format!(", {}", components.join(", "))
    };
    step(
        &format!("installing the nightly toolchain{what} (rustup)"),
        || {
            if !installed.status.success() {
                run(Command::new("rustup").args([
                    "toolchain",
                    "install",
                    "nightly",
                    "--profile",
                    "minimal",
                ]))?;
            }
            if components.is_empty() {
                return Ok(());
            }
            run(Command::new("rustup")
                .args(["component", "add"])
                .args(components)
                .args(["--toolchain", "nightly"]))
        },
    )
}

/// `apt-get install`s each package whose marker file is missing.
pub fn debian_packages(packages: &[(&str, std::path::PathBuf)]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, marker)| !marker.exists())
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let sudo: &[&str] = if is_root { &[] } else { &["sudo", "-n"] };
    step(
        &format!("installing Debian packages: {}", missing.join(" ")),
        || {
            let apt = |args: &[&str]| {
                let mut all: Vec<&str> = sudo.to_vec();
                all.push("apt-get");
                all.extend_from_slice(args);
                let mut cmd = Command::new(all[0]);
                cmd.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
                run(&mut cmd)
            };
            apt(&["update", "-qq"])?;
            let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
            install.extend(&missing);
            apt(&install).map_err(|e| {
                format!(
                    "{e}\n(without root, run: sudo apt-get install {})",
                    missing.join(" ")
                )
            })
        },
    )
}

/// [`PYTHON_PEERS`] in the project venv (after [`libtorch`], which makes the venv).
pub fn python_peers() -> Result<(), String> {
    libtorch()?;
    let python = root().join(".venv").join("bin").join("python");
    let present = Command::new(&python)
        .args(["-c", "import onnxruntime, onnx, torchvision"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    step(
        &format!(
            "installing {} into .venv (the tests' and the benchmark's peers, once)",
            PYTHON_PEERS.join(" ")
        ),
        || pip_install(&python, &PYTHON_PEERS),
    )
}

/// `python -m pip install --quiet <args>` (the packages of one of the project's venvs).
pub fn pip_install(python: &Path, args: &[&str]) -> Result<(), String> {
    run(Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(args))
}
