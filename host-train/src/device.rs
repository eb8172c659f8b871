//! Device names (`cpu`, `cuda`, `cuda:N`), checked against what the machine has before any
//! work starts.

use anyhow::{bail, Context, Result};
use tch::{Cuda, Device};

/// Parses one device name.
pub fn parse(name: &str) -> Result<Device> {
    let name = name.trim();
    match name {
        "cpu" => return Ok(Device::Cpu),
        "cuda" | "gpu" => return Ok(Device::Cuda(0)),
        _ => {}
    }
    let index = name
        .strip_prefix("cuda:")
        .or_else(|| name.strip_prefix("gpu:"))
        .with_context(|| format!("unknown device {name:?} (cpu, cuda or cuda:N)"))?;
    let index: usize = index
        .parse()
        .with_context(|| format!("device {name:?}: {index:?} is not a GPU index"))?;
    Ok(Device::Cuda(index))
}

/// Parses and checks a device list: a GPU must exist when one is asked for.
pub fn parse_all(names: &[String]) -> Result<Vec<Device>> {
    let devices = names
        .iter()
        .flat_map(|n| n.split(','))
        .filter(|n| !n.trim().is_empty())
        .map(parse)
        .collect::<Result<Vec<_>>>()?;
    check(&devices)?;
    Ok(devices)
}

/// Fails clearly if a device is not there.
pub fn check(devices: &[Device]) -> Result<()> {
    let gpus = if devices.iter().any(|d| d.is_cuda()) {
        if !Cuda::is_available() {
            bail!(
                "{} asked for a CUDA GPU, but libtorch sees none (no GPU, no driver, or a CPU-only \
                 libtorch); use --devices cpu",
                describe(devices)
            );
        }
        Cuda::device_count().max(0) as usize
    } else {
        0
    };
    for d in devices {
        if let Device::Cuda(i) = d {
            if *i >= gpus {
                bail!(
                    "cuda:{i} does not exist: this machine has {gpus} GPU(s) (cuda:0 .. cuda:{})",
                    gpus.saturating_sub(1)
                );
            }
        }
    }
    Ok(())
}

/// `cpu, cuda:1` for messages.
pub fn describe(devices: &[Device]) -> String {
    devices
        .iter()
        .map(|d| match d {
            Device::Cpu => "cpu".to_string(),
            Device::Cuda(i) => format!("cuda:{i}"),
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sets libtorch up for work on `devices`: on GPUs, IEEE f32 (no TF32) and, with
/// `deterministic`, reproducible algorithms ([`set_deterministic`]).
pub fn prepare(devices: &[Device], deterministic: bool) {
    if devices.iter().any(|d| d.is_cuda()) {
        set_tf32(false);
        set_deterministic(deterministic);
    }
}

/// Asks libtorch for reproducible GPU results: deterministic cuDNN algorithms and no
/// benchmark-mode autotuning (whose choice can change between runs), and cuBLAS's fixed
/// workspace. Deterministic algorithms are often slower (`host-train bench --deterministic`
/// measures how much); the CPU is deterministic anyway.
pub fn set_deterministic(on: bool) {
    tch::Cuda::cudnn_set_benchmark(!on);
    if on && std::env::var_os("CUBLAS_WORKSPACE_CONFIG").is_none() {
        std::env::set_var("CUBLAS_WORKSPACE_CONFIG", ":4096:8");
    }
    set_deterministic_cudnn(on);
}

/// libtorch's global switches that tch does not wrap, called through their exported C++
/// (Itanium ABI) names in libtorch_cpu: `at::globalContext()` and the `at::Context` members,
/// which take `this` as their first argument in that ABI. These are the functions behind
/// PyTorch's `torch.backends.cudnn.deterministic`.
mod at_context {
    use std::ffi::c_void;
    extern "C" {
        #[link_name = "_ZN2at13globalContextEv"]
        pub fn global_context() -> *mut c_void;
        #[link_name = "_ZN2at7Context21setDeterministicCuDNNEb"]
        pub fn set_deterministic_cudnn(this: *mut c_void, on: bool);
        #[link_name = "_ZNK2at7Context18deterministicCuDNNEv"]
        pub fn deterministic_cudnn(this: *const c_void) -> bool;
        #[link_name = "_ZNK2at7Context14benchmarkCuDNNEv"]
        pub fn benchmark_cudnn(this: *const c_void) -> bool;
        #[link_name = "_ZN2at7Context17setAllowTF32CuDNNEb"]
        pub fn set_allow_tf32_cudnn(this: *mut c_void, on: bool);
        #[link_name = "_ZN2at7Context18setAllowTF32CuBLASEb"]
        pub fn set_allow_tf32_cublas(this: *mut c_void, on: bool);
    }
}

/// Turns cuDNN's deterministic algorithms on or off (`torch.backends.cudnn.deterministic`).
pub fn set_deterministic_cudnn(on: bool) {
    // SAFETY: `globalContext()` returns libtorch's process-wide context, valid for the
    // process's life; the setter only stores a flag (it is what PyTorch's Python binding calls).
    unsafe { at_context::set_deterministic_cudnn(at_context::global_context(), on) }
}

/// Lets cuDNN and cuBLAS use TF32 (10-bit mantissa products) for f32 work, or not. libtorch
/// lets cuDNN by default; the trainer turns it off on GPUs, so that CUDA computes the f32 net
/// the core does (logits within 1e-4, `host-train verify`).
pub fn set_tf32(on: bool) {
    // SAFETY: as above; setters of process-wide flags.
    unsafe {
        let ctx = at_context::global_context();
        at_context::set_allow_tf32_cudnn(ctx, on);
        at_context::set_allow_tf32_cublas(ctx, on);
    }
}

/// Whether cuDNN's deterministic algorithms are on.
pub fn deterministic_cudnn() -> bool {
    // SAFETY: as above; a const getter of a flag.
    unsafe { at_context::deterministic_cudnn(at_context::global_context()) }
}

/// Whether cuDNN's benchmark-mode autotuning is on.
pub fn benchmark_cudnn() -> bool {
    // SAFETY: as above; a const getter of a flag.
    unsafe { at_context::benchmark_cudnn(at_context::global_context()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(parse("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse("cuda:1").unwrap(), Device::Cuda(1));
        assert_eq!(parse("cuda").unwrap(), Device::Cuda(0));
        assert!(parse("tpu").is_err());
        assert!(parse("cuda:x").is_err());
        assert_eq!(
            parse_all(&["cpu,cpu".into()]).unwrap(),
            vec![Device::Cpu, Device::Cpu]
        );
    }

    #[test]
    fn a_missing_gpu_is_a_clear_error() {
        if Cuda::is_available() {
            let n = Cuda::device_count();
            let err = parse_all(&[format!("cuda:{n}")]).unwrap_err();
            assert!(format!("{err}").contains("does not exist"), "{err}");
        } else {
            let err = parse_all(&["cuda:0".into()]).unwrap_err();
            assert!(format!("{err}").contains("sees none"), "{err}");
        }
    }

    #[test]
    fn determinism_switches_reach_libtorch() {
        set_deterministic(true);
        assert!(deterministic_cudnn() && !benchmark_cudnn());
        set_deterministic(false);
        assert!(!deterministic_cudnn() && benchmark_cudnn());
    }

    /// A CUDA build of libtorch registers its CUDA half when the program loads, GPU or not
    /// (without it, a GPU machine would report no GPU: the linker dropped `libtorch_cuda`
    /// until build.rs kept it).
    #[test]
    fn a_cuda_libtorch_has_its_cuda_half_linked() {
        if env!("LIBTORCH_HAS_CUDA") == "1" {
            assert!(tch::utils::has_cudart(), "libtorch_cuda is not linked");
        } else {
            eprintln!("a CPU-only libtorch: nothing to check");
        }
    }
}
