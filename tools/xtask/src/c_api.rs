//! The C API's tasks: its header (`c-header`), its static libraries (`c-lib`), and the
//! checks `cargo xtask test` runs on its crate, which lives outside the workspace.

use crate::process::{cargo, root, run, step};
use crate::setup;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The crate, and the header it makes.
fn ffi_dir() -> PathBuf {
    root().join("core/ffi")
}
const HEADER: &str = "include/alexnet.h";

/// The targets the static library is built for, with their features: this machine, the
/// Cortex-M4F/M7 (with the DSP kernels) and the Cortex-M3.
const LIBRARIES: [(Option<&str>, &str); 3] = [
    (None, ""),
    (Some(setup::EMBEDDED_TARGET), "dsp"),
    (Some("thumbv7m-none-eabi"), ""),
];

/// cargo in the C API's crate, without the variables an outer cargo sets for its own build.
fn ffi_cargo() -> Command {
    let mut c = cargo();
    c.current_dir(ffi_dir());
    for var in [
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        c.env_remove(var);
    }
    c
}

/// Runs cbindgen on the crate, writing the header to `out`.
fn cbindgen(out: &Path) -> Result<(), String> {
    run(Command::new("cbindgen")
        .current_dir(ffi_dir())
        .args([
            "--quiet",
            "--config",
            "cbindgen.toml",
            "--crate",
            "alexnet-core-ffi",
        ])
        .arg("--output")
        .arg(out))
}

/// `cargo xtask c-header`: rewrites `core/ffi/include/alexnet.h` from the crate's source.
pub fn write_header() -> Result<(), String> {
    setup::c_tools()?;
    step("writing core/ffi/include/alexnet.h with cbindgen", || {
        cbindgen(&ffi_dir().join(HEADER))
    })
}

/// Fails unless the checked-in header is the one cbindgen makes from the source now.
pub fn check_header() -> Result<(), String> {
    let fresh = ffi_dir().join("target/alexnet.h");
    std::fs::create_dir_all(ffi_dir().join("target")).map_err(|e| e.to_string())?;
    cbindgen(&fresh)?;
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    if read(&fresh)? == read(&ffi_dir().join(HEADER))? {
        Ok(())
    } else {
        Err(format!(
            "core/ffi/{HEADER} is out of date with core/ffi/src: run `cargo xtask c-header` \
             (cbindgen's version: {})",
            fresh.display()
        ))
    }
}

/// The crate's format and clippy (host and Cortex-M builds), warnings as errors.
pub fn lint() -> Result<(), String> {
    run(ffi_cargo().args(["fmt", "--check"]))?;
    run(ffi_cargo().args(["clippy", "--release", "--quiet", "--", "-D", "warnings"]))?;
    run(ffi_cargo().args([
        "clippy",
        "--release",
        "--quiet",
        "--target",
        setup::EMBEDDED_TARGET,
        "--features",
        "dsp",
        "--",
        "-D",
        "warnings",
    ]))
}

/// `cargo xtask c-lib`: the static library for each target, with the header, in
/// `core/ffi/target/dist/`; prints each library's size.
pub fn libraries() -> Result<(), String> {
    setup::rust_targets()?;
    let dist = ffi_dir().join("target/dist");
    for (target, features) in LIBRARIES {
        let name = target.unwrap_or("host");
        step(&format!("the C API's static library for {name}"), || {
            let mut cmd = ffi_cargo();
            cmd.args(["rustc", "--release", "--quiet", "--crate-type", "staticlib"]);
            if let Some(t) = target {
                cmd.args(["--target", t]);
            }
            if !features.is_empty() {
                cmd.args(["--features", features]);
            }
            run(&mut cmd)?;
            let built = match target {
                Some(t) => ffi_dir().join("target").join(t).join("release"),
                None => ffi_dir().join("target/release"),
            }
            .join("libalexnet_core_ffi.a");
            let dir = dist.join(name);
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::copy(&built, dir.join("libalexnet_core_ffi.a"))
                .map_err(|e| format!("cannot copy {}: {e}", built.display()))?;
            let bytes = std::fs::metadata(&built).map(|m| m.len()).unwrap_or(0);
            eprintln!(
                "    {}: {bytes} bytes ({:.2} MiB; the archive holds the Rust core library whole, \
                 a firmware links only what it calls)",
                dir.join("libalexnet_core_ffi.a").display(),
                bytes as f64 / (1 << 20) as f64
            );
            Ok(())
        })?;
    }
    let include = dist.join("include");
    std::fs::create_dir_all(&include).map_err(|e| e.to_string())?;
    std::fs::copy(ffi_dir().join(HEADER), include.join("alexnet.h")).map_err(|e| e.to_string())?;
    eprintln!("    header: {}", include.join("alexnet.h").display());
    Ok(())
}
