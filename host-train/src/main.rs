//! `host-train`: trains AlexNet with libtorch from the core's descriptors, evaluates it, and
//! exports what `quantize` and the device read.

use alexnet_host::profile::Dataset;
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use host_train::config::{Config, Init, Parallel, Source};
use host_train::train::{self, RunOptions};
use std::path::PathBuf;
use tch::{Device, Tensor};

#[derive(Parser)]
#[command(
    name = "host-train",
    version,
    about = "Train AlexNet with libtorch from the core's descriptors, evaluate it, export it for the device"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train (the paper's recipe by default; a TOML config and these flags override it).
    Train(Box<TrainArgs>),
    /// Evaluate weights (blob, safetensors or .pth) on a config's validation and test data.
    Eval(EvalArgs),
    /// Export a run's latest checkpoint as model.blob and model.safetensors.
    Export {
        /// The run's folder (the --out of `train`).
        run: PathBuf,
    },
    /// Training throughput on synthetic batches (no data loading): images/s of full SGD
    /// steps, for comparing devices, tower layouts and PyTorch (host-train/examples/eager.py).
    Bench {
        /// paper, caffe, torchvision or micro.
        #[arg(long, default_value = "paper")]
        arch: String,
        /// Devices, one per tower (cpu, cuda:0, cuda:0,cuda:0, cuda:0,cuda:1).
        #[arg(long, default_value = "cpu")]
        devices: String,
        /// Images per step.
        #[arg(long, default_value_t = 128)]
        batch_size: i64,
        /// Timed steps (after 2 warm-up steps).
        #[arg(long, default_value_t = 10)]
        steps: u32,
        /// libtorch threads (0: its default).
        #[arg(long, default_value_t = 0)]
        threads: i32,
        /// Deterministic cuDNN and no autotuning (what `train --deterministic` costs).
        #[arg(long)]
        deterministic: bool,
    },
    /// Data parallelism's reduction on its own: joins the ranks through the real
    /// initialization (NCCL on a GPU, TCP on the CPU; at world size 1 too), averages a
    /// known tensor and checks the result.
    DistCheck {
        /// This process's device (cpu or cuda:N).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// This process's rank.
        #[arg(long, default_value_t = 0)]
        rank: usize,
        /// Number of processes.
        #[arg(long, default_value_t = 1)]
        world_size: usize,
        /// Where ranks meet: file:///shared/path or tcp://host:port.
        #[arg(long)]
        rendezvous: String,
        /// The run's id (a file rendezvous needs one).
        #[arg(long)]
        run_id: Option<String>,
    },
    /// Check libtorch on a device against the core: the paper's initialization through tch
    /// and through the core (logits), and two towers on the device against one (logits and
    /// gradients). Fails beyond the tolerance.
    Verify {
        /// Nets to check, comma-separated (paper, caffe, torchvision, micro).
        #[arg(long, default_value = "micro,paper")]
        arch: String,
        /// The device (cpu, cuda:N).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Largest relative difference allowed (gradients: ten times this).
        #[arg(long, default_value_t = 1e-4)]
        tolerance: f64,
    },
}

/// Flags that override the config file.
#[derive(Args, Clone, Default)]
struct Overrides {
    /// TOML config (unknown keys are errors); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Architecture: paper, caffe, torchvision or micro.
    #[arg(long)]
    arch: Option<String>,
    /// Data source.
    #[arg(long, value_parser = ["fashion-mnist", "folder"])]
    source: Option<String>,
    /// Fashion-MNIST folder, or the folder holding train/ and val/.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Use only N training images.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Use only N validation (and test) images.
    #[arg(long)]
    val_limit: Option<usize>,
    /// Loader threads (0: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// libtorch threads (0: its default).
    #[arg(long)]
    threads: Option<usize>,
    /// Devices: cpu, cuda:0, or one per tower: cuda:0,cuda:1.
    #[arg(long)]
    devices: Option<String>,
    /// Skip the ten-patch evaluation.
    #[arg(long)]
    no_ten_patch: bool,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    common: Overrides,
    /// Run folder: checkpoints, metrics.csv, plots, model.blob, model.safetensors.
    #[arg(long, short, default_value = "runs/train")]
    out: PathBuf,
    /// Epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Initial learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of everything random.
    #[arg(long)]
    seed: Option<u64>,
    /// Stop after N steps in all.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Checkpoint every N steps as well as every epoch.
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Initialization: paper or kaiming.
    #[arg(long, value_parser = ["paper", "kaiming"])]
    init: Option<String>,
    /// Start from these weights (core blob, safetensors, or a PyTorch .pth state_dict).
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// Continue the run in --out from its latest checkpoint (its config.toml is the base).
    #[arg(long)]
    resume: bool,
    /// towers (the paper's model parallelism) or data (NCCL, one process per GPU).
    #[arg(long, value_enum)]
    parallel: Option<Parallel>,
    /// This process's rank (data parallelism).
    #[arg(long)]
    rank: Option<usize>,
    /// Number of processes (data parallelism).
    #[arg(long)]
    world_size: Option<usize>,
    /// Where ranks meet: file:///shared/path or tcp://host:port (on the CPU: tcp only).
    #[arg(long)]
    rendezvous: Option<String>,
    /// The run's id, shared by all ranks and new per launch (default: SLURM_JOB_ID or
    /// TORCHELASTIC_RUN_ID); a file rendezvous needs one.
    #[arg(long)]
    run_id: Option<String>,
    /// Reproducible GPU results (deterministic cuDNN, no autotuning): exact resume on CUDA,
    /// at some cost in speed.
    #[arg(long)]
    deterministic: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    common: Overrides,
    /// Weights: core blob, safetensors or PyTorch .pth.
    weights: PathBuf,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

fn base_config(path: Option<&PathBuf>, fallback: Option<PathBuf>) -> Result<Config> {
    match (path, fallback) {
        (Some(p), _) => Config::from_file(p),
        (None, Some(p)) if p.exists() => Config::from_file(&p),
        _ => Ok(Config::default()),
    }
}

fn apply(cfg: &mut Config, o: &Overrides) -> Result<()> {
    if let Some(a) = &o.arch {
        cfg.arch = a.clone();
        // A net made for another data set than Fashion-MNIST reads image folders, unless
        // told otherwise.
        if cfg.profile()?.dataset != Dataset::FashionMnist
            && o.source.is_none()
            && cfg.data.source == Source::FashionMnist
        {
            cfg.data.source = Source::Folder;
        }
    }
    if let Some(s) = &o.source {
        cfg.data.source = if s == "folder" {
            Source::Folder
        } else {
            Source::FashionMnist
        };
    }
    if let Some(d) = &o.data {
        cfg.data.dir = d.clone();
    }
    if let Some(n) = o.train_limit {
        cfg.data.train_limit = n;
    }
    if let Some(n) = o.val_limit {
        cfg.data.val_limit = n;
    }
    if let Some(n) = o.workers {
        cfg.data.workers = n;
    }
    if let Some(n) = o.threads {
        cfg.train.threads = n;
    }
    if let Some(d) = &o.devices {
        cfg.train.devices = d.split(',').map(|s| s.trim().to_string()).collect();
    }
    if o.no_ten_patch {
        cfg.eval.ten_patch = false;
    }
    Ok(())
}

fn print_eval(label: &str, e: &host_train::eval::Eval) {
    println!(
        "{label:<26} top-1 error {:6.2}%  top-5 error {:6.2}%  (accuracy {:6.2}%, loss {:.4}, {} images)",
        100.0 * e.top1_error,
        100.0 * e.top5_error,
        100.0 * (1.0 - e.top1_error),
        e.loss,
        e.images
    );
}

fn train_cmd(a: TrainArgs) -> Result<()> {
    let saved = a.out.join("config.toml");
    let mut cfg = base_config(a.common.config.as_ref(), a.resume.then_some(saved))?;
    apply(&mut cfg, &a.common)?;
    let t = &mut cfg.train;
    if let Some(v) = a.epochs {
        t.epochs = v;
    }
    if let Some(v) = a.batch_size {
        t.batch_size = v;
    }
    if let Some(v) = a.lr {
        t.lr = v;
    }
    if let Some(v) = a.seed {
        t.seed = v;
    }
    if let Some(v) = a.max_steps {
        t.max_steps = v;
    }
    if let Some(v) = a.checkpoint_every {
        t.checkpoint_every = v;
    }
    if let Some(v) = &a.init {
        t.init = Some(if v == "kaiming" {
            Init::Kaiming
        } else {
            Init::Paper
        });
    }
    if let Some(p) = a.parallel {
        t.parallel = p;
    }
    if let Some(r) = a.rank {
        cfg.dist.rank = r;
    }
    if let Some(w) = a.world_size {
        cfg.dist.world_size = w;
    }
    if a.rendezvous.is_some() {
        cfg.dist.rendezvous = a.rendezvous.clone();
    }
    if a.run_id.is_some() {
        cfg.dist.run_id = a.run_id.clone();
    }
    if a.deterministic {
        t.deterministic = true;
    }
    let opts = RunOptions {
        resume: a.resume,
        init_from: a.init_from.clone(),
        progress: !a.quiet,
    };
    let s = train::run(&cfg, &a.out, &opts)?;
    println!(
        "\ntrained {} epochs, {} steps in {:.1} s (training only); lr now {}",
        s.state.epoch, s.state.step, s.train_seconds, s.state.lr
    );
    print_eval("validation, centre crop", &s.val);
    if let Some(e) = &s.val_ten_patch {
        print_eval("validation, ten patches", e);
    }
    if let Some(e) = &s.test {
        print_eval("test, centre crop", e);
    }
    if let Some(e) = &s.test_ten_patch {
        print_eval("test, ten patches", e);
    }
    println!("model     {}", s.blob.display());
    println!("weights   {}", s.safetensors.display());
    println!("metrics   {}", a.out.join("metrics.csv").display());
    Ok(())
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let mut cfg = base_config(a.common.config.as_ref(), None)?;
    apply(&mut cfg, &a.common)?;
    cfg.validate()?;
    let arch = cfg.arch()?;
    let devices = host_train::device::parse_all(&cfg.train.devices)?;
    let spec = train::load_weights(&a.weights, arch)?;
    let tmp = std::env::temp_dir().join("host-train-eval");
    let data = train::prepare_data(&cfg, &tmp, !a.quiet)?;
    let net = host_train::Net::with_towers(&spec, &devices)?;
    let settings = host_train::eval::LoaderSettings {
        batch: cfg.eval.batch_size,
        workers: cfg.data.workers,
        prefetch: cfg.data.prefetch,
        progress: !a.quiet,
    };
    let aug = std::sync::Arc::new(host_train::data::Augment {
        pca: None,
        ..(*data.augment).clone()
    });
    let mut sets = vec![("validation", data.val.clone())];
    if let Some(t) = &data.test {
        sets.push(("test", t.clone()));
    }
    for (name, set) in sets {
        let (centre, patches) = host_train::eval::centre_and_ten_patch(
            &net,
            &set,
            &data.norm,
            &aug,
            cfg.eval.ten_patch,
            settings,
        )?;
        print_eval(&format!("{name}, centre crop"), &centre);
        if let Some(e) = &patches {
            print_eval(&format!("{name}, ten patches"), e);
        }
    }
    Ok(())
}

/// What `host-train bench` measures.
struct BenchArgs {
    arch: String,
    devices: String,
    batch: i64,
    steps: u32,
    threads: i32,
    deterministic: bool,
}

fn bench(b: BenchArgs) -> Result<()> {
    let BenchArgs {
        batch,
        steps,
        threads,
        ..
    } = b;
    let arch = alexnet_host::profile::by_name(&b.arch)?.arch;
    let devices = host_train::device::parse_all(std::slice::from_ref(&b.devices))?;
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    host_train::device::prepare(&devices, b.deterministic);
    let spec = alexnet_host::init::paper_init(arch, 0)?;
    let net = host_train::Net::with_towers(&spec, &devices)?;
    let mut sgd = host_train::sgd::Sgd::new(&net, 0.9, 5e-4);
    let s = arch.input;
    let d = devices[0];
    let x = Tensor::randn(
        [batch, s.c as i64, s.h as i64, s.w as i64],
        (tch::Kind::Float, d),
    );
    let y = Tensor::randint(arch.classes() as i64, [batch], (tch::Kind::Int64, d));
    let sync = || {
        for dev in &devices {
            if let Device::Cuda(i) = dev {
                tch::Cuda::synchronize(*i as i64);
            }
        }
    };
    let mut step = |i: u64| -> Result<()> {
        host_train::sgd::Sgd::zero_grad(&net);
        let loss = net.forward(&x, Some(i))?.cross_entropy_for_logits(&y);
        loss.backward();
        sgd.step(&net, 0.01)
    };
    for i in 0..2 {
        step(i)?;
    }
    sync();
    let start = std::time::Instant::now();
    for i in 0..steps {
        step(2 + i as u64)?;
    }
    sync();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} on {} ({} threads{}): batch {batch}, {steps} steps in {secs:.2} s: {:.1} images/s",
        arch.name,
        host_train::device::describe(&devices),
        tch::get_num_threads(),
        if b.deterministic {
            ", deterministic"
        } else {
            ""
        },
        (batch * steps as i64) as f64 / secs
    );
    Ok(())
}

fn verify(archs: &str, device: &str, tolerance: f64) -> Result<()> {
    let device = host_train::device::parse(device)?;
    host_train::device::check(&[device])?;
    host_train::device::prepare(&[device], true);
    let mut failed = Vec::new();
    for (k, name) in archs.split(',').map(str::trim).enumerate() {
        let arch = alexnet_host::profile::by_name(name)?.arch;
        let seed = 1 + k as u64;
        let core = host_train::verify::tch_vs_core(arch, seed, device)?;
        let (logits, grads) = host_train::verify::towers_vs_one(arch, seed, device)?;
        let on = host_train::device::describe(&[device]);
        println!(
            "{name:<12} on {on}: tch vs core {core:.2e}; two towers vs one: logits {logits:.2e}, gradients {grads:.2e}"
        );
        if core > tolerance || logits > tolerance || grads > 10.0 * tolerance {
            failed.push(name.to_string());
        }
    }
    anyhow::ensure!(
        failed.is_empty(),
        "beyond the tolerance {tolerance:e}: {}",
        failed.join(", ")
    );
    Ok(())
}

fn dist_check(
    device: &str,
    rank: usize,
    world: usize,
    url: &str,
    run_id: Option<&str>,
) -> Result<()> {
    use host_train::dist;
    let device = host_train::device::parse(device)?;
    host_train::device::check(&[device])?;
    let run_id = dist::run_id(run_id);
    let started = std::time::Instant::now();
    let mut sync = match device {
        Device::Cuda(i) => dist::nccl(rank, world, url, run_id.as_deref(), i)?,
        _ => dist::connect(rank, world, Some(url), run_id.as_deref(), device)?
            .context("the CPU reduction needs at least 2 ranks")?,
    };
    let joined = started.elapsed().as_secs_f64();
    // Rank r holds r + 1 everywhere: the mean is (world + 1) / 2 on every rank, exactly.
    let grads = [
        Tensor::full([1000], (rank + 1) as f64, (tch::Kind::Float, device)),
        Tensor::full([7, 3], (rank + 1) as f64, (tch::Kind::Float, device)),
    ];
    sync.all_reduce_mean(&grads)?;
    let expected = (world + 1) as f64 / 2.0;
    for g in &grads {
        let (lo, hi) = (g.min().double_value(&[]), g.max().double_value(&[]));
        anyhow::ensure!(
            lo == expected && hi == expected,
            "rank {rank}: the all-reduce gave values in [{lo}, {hi}], not {expected}"
        );
    }
    println!(
        "rank {rank} of {world} on {}: joined in {joined:.2} s, all-reduce mean {expected} correct",
        host_train::device::describe(&[device])
    );
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Train(a) => train_cmd(*a),
        Command::Eval(a) => eval_cmd(a),
        Command::Export { run } => {
            let cfg = Config::from_file(&run.join("config.toml"))?;
            let arch = cfg.arch()?;
            // Every rank of a data-parallel run holds the same weights; rank 0's are exported.
            let world = match cfg.train.parallel {
                host_train::config::Parallel::Data => cfg.dist.world_size.max(1),
                host_train::config::Parallel::Towers => 1,
            };
            let c = host_train::checkpoint::latest(&run, (0, world))?
                .with_context(|| format!("{} holds no checkpoint", run.display()))?;
            let data = train::prepare_data(&cfg, &run, false)?;
            let spec = alexnet_host::safetensors_io::load(&c.weights, arch)?;
            let mut net = host_train::Net::from_spec(&spec, Device::Cpu)?;
            net.set_metadata(data.preprocess.clone(), Some(data.labels.clone()));
            let (blob, st) = train::export(&net, &run)?;
            println!("model     {}\nweights   {}", blob.display(), st.display());
            Ok(())
        }
        Command::Bench {
            arch,
            devices,
            batch_size,
            steps,
            threads,
            deterministic,
        } => bench(BenchArgs {
            arch,
            devices,
            batch: batch_size,
            steps,
            threads,
            deterministic,
        }),
        Command::DistCheck {
            device,
            rank,
            world_size,
            rendezvous,
            run_id,
        } => dist_check(&device, rank, world_size, &rendezvous, run_id.as_deref()),
        Command::Verify {
            arch,
            device,
            tolerance,
        } => verify(&arch, &device, tolerance),
    }
}
