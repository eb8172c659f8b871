//! Installing what the tasks need, only where it is missing.

use crate::tasks::{run, step};
use std::path::Path;
use std::process::Command;

/// The microcontroller target the core must build for.
pub const EMBEDDED_TARGET: &str = "thumbv7em-none-eabihf";
/// Debian's Fashion-MNIST package and where it puts the data.
const DATASET_PACKAGE: &str = "dataset-fashion-mnist";
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Everything the tasks need.
pub fn all() -> Result<(), String> {
    rust_target()?;
    debian_packages(&[(
        DATASET_PACKAGE,
        Path::new(FASHION_MNIST_DIR).join("t10k-images-idx3-ubyte.gz"),
    )])
}

/// `rustup target add` unless the target is installed.
pub fn rust_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == EMBEDDED_TARGET)
    {
        return Ok(());
    }
    step(
        &format!("installing the Rust target {EMBEDDED_TARGET}"),
        || run(Command::new("rustup").args(["target", "add", EMBEDDED_TARGET])),
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
