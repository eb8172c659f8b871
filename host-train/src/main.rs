//! `host-train`: for now, checks that libtorch runs the core's nets (`host-train check`).

use alexnet_core::builtin;
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tch::{Device, Tensor};

#[derive(Parser)]
#[command(
    name = "host-train",
    version,
    about = "Train AlexNet with libtorch from the core's descriptors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a built-in net in libtorch with the paper's initialization and run one batch.
    Check {
        /// paper, caffe, torchvision or micro.
        #[arg(long, default_value = "micro")]
        arch: String,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Check { arch } => {
            let arch = builtin::by_name(&arch)
                .with_context(|| format!("unknown architecture {arch:?}"))?;
            let spec = alexnet_host::init::paper_init(arch, 0)?;
            let net = host_train::Net::from_spec(&spec, Device::cuda_if_available())?;
            let s = arch.input;
            let x = Tensor::zeros(
                [2, s.c as i64, s.h as i64, s.w as i64],
                (tch::Kind::Float, net.vs.device()),
            );
            let y = net.forward_t(&x, false);
            println!(
                "{}: logits {:?} on {:?}",
                arch.name,
                y.size(),
                net.vs.device()
            );
            Ok(())
        }
    }
}
