//! `alexnet init`.

use alexnet_core::builtin;
use alexnet_host::atomic::write_atomic;
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Instant;

pub fn run(arch_name: &str, seed: u64, output: &Path) -> Result<()> {
    let arch = builtin::by_name(arch_name).with_context(|| {
        let names: Vec<&str> = builtin::ALL.iter().map(|a| a.name).collect();
        format!(
            "unknown architecture {arch_name:?}; built in: {}",
            names.join(", ")
        )
    })?;
    let start = Instant::now();
    eprintln!(
        "initializing {} ({} parameters, paper init N(0, 0.01), seed {seed})...",
        arch.name,
        crate::thousands(arch.param_count() as u64)
    );
    let spec = alexnet_host::init::paper_init(arch, seed)?;
    let blob = spec.to_blob()?;
    write_atomic(output, &blob)?;
    println!(
        "wrote {} ({:.1} MB) in {:.1} s",
        output.display(),
        blob.len() as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
