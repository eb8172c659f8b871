//! `cargo xtask gpu-kit`: everything a GPU machine needs to prove host-train in one run, built
//! here, into one folder (`target/gpu-kit/kit`, at most 60 MiB):
//!
//! * `bin/host-train` (with NCCL) linked against the GPU image's libtorch: tch
//!   [`KIT_TCH`] built against PyTorch [`KIT_TORCH`]'s wheel, installed here in a second venv
//!   (`.venv-torch211`) only for building; the binary finds libtorch at run time in the
//!   machine's own torch package (`run.sh` puts it on `LD_LIBRARY_PATH`);
//! * `bin/alexnet` (the core's CLI, which needs no libtorch), for accuracy through the core;
//! * `data/fashion-mnist`: the first 20,000 training images of Fashion-MNIST and its test split;
//! * `eager.py`, the same paper net in PyTorch eager (the peer), and `run.sh`.
//!
//! host-train's own manifest asks for the tch the workspace builds with; the kit builds the
//! same sources from a generated manifest (`target/gpu-kit/build/Cargo.toml`) that asks for
//! [`KIT_TCH`] instead, outside the workspace, with the workspace's lock file as its start.

use crate::process::{cargo, root, run, run_tee, step};
use crate::setup;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The PyTorch of the GPU image the kit is for.
pub const KIT_TORCH: &str = "2.11.0";
/// The tch release that binds it.
pub const KIT_TCH: &str = "0.24.0";
/// The largest kit the device tool carries comfortably (its limit is 64 MiB in all).
const SIZE_LIMIT: u64 = 60 << 20;
/// Fashion-MNIST training images the kit carries (5,000 of them validate).
const TRAIN_IMAGES: usize = 20_000;
/// Pure-Python packages `import torch` needs (the wheel itself is installed without its
/// dependencies: the CUDA libraries come from the main venv's, which has the same majors).
const TORCH_PURE_DEPS: [&str; 7] = [
    "typing_extensions",
    "sympy",
    "networkx",
    "jinja2",
    "fsspec",
    "filelock",
    "setuptools",
];

fn kit_dir() -> PathBuf {
    root().join("target/gpu-kit")
}

/// Builds the kit; with `check`, then runs its `run.sh --cpu` here.
pub fn build(check: bool) -> Result<(), String> {
    setup::all()?;
    let torch = step(
        &format!("PyTorch {KIT_TORCH} for building against (.venv-torch211, once)"),
        kit_torch,
    )?;
    let build = kit_dir().join("build");
    step(
        &format!("host-train with tch {KIT_TCH} against torch {KIT_TORCH} (release, nccl)"),
        || {
            std::fs::create_dir_all(&build).map_err(|e| format!("{}: {e}", build.display()))?;
            write(&build.join("Cargo.toml"), &standalone_manifest(&root())?)?;
            if !build.join("Cargo.lock").exists() {
                copy(&root().join("Cargo.lock"), &build.join("Cargo.lock"))?;
            }
            run(cargo()
                .current_dir(&build)
                .args([
                    "build",
                    "--release",
                    "--quiet",
                    "--features",
                    "nccl",
                    "--bin",
                ])
                .arg("host-train")
                .env("LIBTORCH", torch.join("libtorch"))
                .env("LIBTORCH_CXX11_ABI", "1")
                .env("CARGO_TARGET_DIR", kit_dir().join("cargo-target")))
        },
    )?;
    step("the core's CLI (release)", || {
        run(cargo().args(["build", "--release", "--quiet", "-p", "alexnet-cli"]))
    })?;
    let kit = kit_dir().join("kit");
    let host_train = kit_dir().join("cargo-target/release/host-train");
    let alexnet = root().join("target/release/alexnet");
    step("assembling the kit", || {
        assemble(&kit, &host_train, &alexnet, KIT_TORCH, KIT_TCH)?;
        for bin in ["host-train", "alexnet"] {
            run(Command::new("strip").arg(kit.join("bin").join(bin)))?;
        }
        subset_fashion_mnist(&kit.join("data/fashion-mnist"))
    })?;
    let size = folder_size(&kit)?;
    eprintln!(
        "\nkit: {} ({:.1} MiB of at most {} MiB)",
        kit.display(),
        size as f64 / (1 << 20) as f64,
        SIZE_LIMIT >> 20
    );
    if size > SIZE_LIMIT {
        return Err(format!("the kit is {size} bytes, over {SIZE_LIMIT}"));
    }
    if check {
        step("the kit's run.sh --cpu, here", || {
            run_kit(
                &kit,
                &torch.join("bin/python"),
                &kit_dir().join("results-cpu"),
            )
        })?;
    }
    Ok(())
}

/// `run.sh --cpu` on a kit assembled from the workspace's own debug build (tch and torch as
/// the workspace has them): the short check of the kit's steps in `cargo xtask test`, which
/// has built the binaries already (`build`: build them first).
pub fn dry_run(build: bool) -> Result<(), String> {
    let kit = kit_dir().join("dry");
    let debug = root().join("target/debug");
    if build {
        run(cargo().args([
            "build",
            "--quiet",
            "-p",
            "host-train",
            "-p",
            "alexnet-cli",
            "--bins",
        ]))?;
    }
    let torch = setup::TORCH.trim_start_matches("torch==");
    let tch = "0.26 (the workspace build)";
    assemble(
        &kit,
        &debug.join("host-train"),
        &debug.join("alexnet"),
        torch,
        tch,
    )?;
    let data = kit.join("data/fashion-mnist");
    if !data.exists() {
        std::os::unix::fs::symlink(setup::FASHION_MNIST_DIR, &data)
            .map_err(|e| format!("{}: {e}", data.display()))?;
    }
    run_kit(
        &kit,
        &root().join(".venv/bin/python"),
        &kit_dir().join("results-dry"),
    )
}

fn run_kit(kit: &Path, python: &Path, results: &Path) -> Result<(), String> {
    run_tee(
        Command::new("bash")
            .arg(kit.join("run.sh"))
            .arg("--cpu")
            .env("PYTHON", python)
            .env("RESULTS", results),
    )
    .map(|_| ())
}

/// Lays out a kit: binaries, scripts and `kit.env` (the data is added by the caller).
fn assemble(
    kit: &Path,
    host_train: &Path,
    alexnet: &Path,
    torch: &str,
    tch: &str,
) -> Result<(), String> {
    let bin = kit.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    std::fs::create_dir_all(kit.join("data")).map_err(|e| format!("{}: {e}", kit.display()))?;
    copy(host_train, &bin.join("host-train"))?;
    copy(alexnet, &bin.join("alexnet"))?;
    let src = root().join("host-train");
    copy(&src.join("gpu-kit/run.sh"), &kit.join("run.sh"))?;
    copy(&src.join("gpu-kit/README.md"), &kit.join("README.md"))?;
    copy(&src.join("examples/eager.py"), &kit.join("eager.py"))?;
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into());
    write(
        &kit.join("kit.env"),
        &format!("TORCH_VERSION='{torch}'\nTCH_VERSION='{tch}'\nCOMMIT='{commit}'\n"),
    )
}

/// The venv with PyTorch [`KIT_TORCH`]: its torch folder is what tch links against (linked as
/// `libtorch`), and it imports (for `run.sh --cpu` here) with the main venv's CUDA libraries.
fn kit_torch() -> Result<PathBuf, String> {
    let venv = root().join(".venv-torch211");
    let python = venv.join("bin/python");
    let link = venv.join("libtorch");
    if link.join("lib/libtorch_cpu.so").exists() {
        return Ok(venv);
    }
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    let pip = |args: &[&str]| crate::setup::pip_install(&python, args);
    eprintln!("installing torch=={KIT_TORCH} without its CUDA packages (530 MB download)");
    pip(&["--no-deps", &format!("torch=={KIT_TORCH}")])?;
    pip(&TORCH_PURE_DEPS)?;
    let site = |python: &Path| -> Result<PathBuf, String> {
        let out = Command::new(python)
            .args([
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ])
            .output()
            .map_err(|e| format!("{}: {e}", python.display()))?;
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    };
    let (mine, main) = (site(&python)?, site(&root().join(".venv/bin/python"))?);
    let nvidia = mine.join("nvidia");
    if !nvidia.exists() {
        std::os::unix::fs::symlink(main.join("nvidia"), &nvidia)
            .map_err(|e| format!("{}: {e}", nvidia.display()))?;
    }
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(mine.join("torch"), &link)
        .map_err(|e| format!("{}: {e}", link.display()))?;
    Ok(venv)
}

/// host-train's manifest as a package of its own: the keys it inherits from the workspace
/// written out, paths made absolute, tch at [`KIT_TCH`].
pub fn standalone_manifest(root: &Path) -> Result<String, String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let workspace = read(&root.join("Cargo.toml"))?;
    let crate_dir = root.join("host-train");
    let manifest = read(&crate_dir.join("Cargo.toml"))?;
    let package = section(&workspace, "workspace.package");
    let deps = section(&workspace, "workspace.dependencies");
    let absolute = |value: &str, base: &Path| {
        value.replace("path = \"", &format!("path = \"{}/", base.display()))
    };
    let mut out = String::from(
        "# Generated by `cargo xtask gpu-kit` from host-train/Cargo.toml; do not edit.\n\
         [workspace]\n\n",
    );
    let mut current = String::new();
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').to_string();
            out += line;
            out += "\n";
            if current == "package" {
                out += &format!(
                    "build = \"{}/build.rs\"\nautobins = false\nautoexamples = false\n\
                     autotests = false\nautobenches = false\n",
                    crate_dir.display()
                );
            }
            continue;
        }
        let key = t.split('=').next().unwrap_or("").trim();
        if let Some(k) = t.strip_suffix(".workspace = true") {
            let v = package
                .get(k)
                .ok_or_else(|| format!("the workspace has no package.{k}"))?;
            out += &format!("{k} = {v}\n");
        } else if t.contains("workspace = true") {
            if t != format!("{key} = {{ workspace = true }}") {
                return Err(format!("gpu-kit cannot write out {t:?}"));
            }
            let v = deps
                .get(key)
                .ok_or_else(|| format!("the workspace has no dependency {key}"))?;
            out += &format!("{key} = {}\n", absolute(v, root));
        } else if key == "tch" {
            out += &format!("tch = \"={KIT_TCH}\"\n");
        } else if current == "bin" && key == "path" {
            out += &format!("{}\n", absolute(t, &crate_dir));
        } else {
            out += line;
            out += "\n";
        }
    }
    out += &format!("\n[lib]\npath = \"{}/src/lib.rs\"\n", crate_dir.display());
    Ok(out)
}

/// The `key = value` lines of one `[section]` of a TOML file.
fn section(toml: &str, name: &str) -> BTreeMap<String, String> {
    let mut inside = false;
    let mut entries = BTreeMap::new();
    for line in toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == format!("[{name}]");
        } else if inside {
            if let Some((k, v)) = t.split_once('=') {
                entries.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    entries
}

/// The first [`TRAIN_IMAGES`] training images of Fashion-MNIST and the whole test split, as
/// gzipped IDX files like the originals (Debian's `dataset-fashion-mnist`).
fn subset_fashion_mnist(to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let from = Path::new(setup::FASHION_MNIST_DIR);
    for (name, header, item) in [
        ("train-images-idx3-ubyte.gz", 16, 28 * 28),
        ("train-labels-idx1-ubyte.gz", 8, 1),
    ] {
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(from.join(name))
            .output()
            .map_err(|e| format!("gzip: {e}"))?;
        let bytes = out.stdout;
        if bytes.len() < header {
            return Err(format!("{name} is not an IDX file"));
        }
        let mut subset = bytes[..header].to_vec();
        subset[4..8].copy_from_slice(&(TRAIN_IMAGES as u32).to_be_bytes());
        let end = header + TRAIN_IMAGES * item;
        subset.extend(
            bytes
                .get(header..end)
                .ok_or_else(|| format!("{name} holds fewer than {TRAIN_IMAGES} items"))?,
        );
        let raw = to.join(name.trim_end_matches(".gz"));
        write_bytes(&raw, &subset)?;
        run(Command::new("gzip").args(["-f", "-9", "-n"]).arg(&raw))?;
    }
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        copy(&from.join(name), &to.join(name))?;
    }
    Ok(())
}

fn folder_size(dir: &Path) -> Result<u64, String> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let meta = entry.metadata().map_err(|e| e.to_string())?;
        total += if meta.is_dir() {
            folder_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(to);
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    write_bytes(path, text.as_bytes())
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standalone_manifest_inherits_nothing_and_asks_for_the_kit_tch() {
        let root = root();
        let m = standalone_manifest(&root).unwrap();
        assert!(!m.contains("workspace = true"), "{m}");
        assert!(m.contains(&format!("tch = \"={KIT_TCH}\"")), "{m}");
        assert!(m.contains("[workspace]"));
        let core = format!("path = \"{}/core\"", root.display());
        assert!(m.contains(&core), "{m}");
        let main = format!("path = \"{}/host-train/src/main.rs\"", root.display());
        assert!(m.contains(&main), "{m}");
        assert!(m.contains("nccl = [\"dep:cudarc\"]"), "{m}");
        assert!(m.contains("edition = \"2021\""), "{m}");
    }
}
