//! `alexnet init`.

use alexnet_host::atomic::write_atomic;
use anyhow::Result;
use std::path::Path;
use std::time::Instant;

pub fn run(arch_name: &str, seed: u64, output: &Path) -> Result<()> {
    let arch = alexnet_host::profile::by_name(arch_name)?.arch;
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
