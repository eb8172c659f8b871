//! Training survives SIGKILL at any moment, in particular in the middle of writing a
//! checkpoint: after every kill the latest checkpoint is complete and loads, `--resume`
//! continues, and the finished run equals an uninterrupted one bit for bit.

use anyhow::Result;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn trainer(out: &Path, resume: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_host-train"));
    c.args(["train", "--arch", "micro", "--quiet", "--no-ten-patch"])
        .args([
            "--train-limit",
            "1200",
            "--val-limit",
            "200",
            "--epochs",
            "2",
        ])
        .args([
            "--batch-size",
            "40",
            "--checkpoint-every",
            "1",
            "--seed",
            "3",
        ])
        .args(["--threads", "1", "--workers", "1"])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if resume {
        c.arg("--resume");
    }
    c
}

/// Waits until a checkpoint is being written (its temporary folder exists), then kills.
/// Returns false if the trainer finished first.
fn kill_mid_checkpoint(child: &mut Child, out: &Path, min_step: u64) -> Result<bool> {
    let dir = out.join("checkpoints");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if child.try_wait()?.is_some() {
            return Ok(false);
        }
        let writing = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .any(|n| {
                n.strip_prefix(".step-")
                    .and_then(|n| n.strip_suffix(".tmp"))
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|s| s >= min_step)
            });
        if writing {
            child.kill()?; // SIGKILL
            child.wait()?;
            return Ok(true);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    anyhow::bail!("no checkpoint was written within 120 s")
}

#[test]
fn sigkill_during_checkpoints_loses_nothing() -> Result<()> {
    if !alexnet_host::idx::fashion_mnist_installed() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let whole = dir.path().join("whole");
    assert!(trainer(&whole, false).status()?.success());

    let run = dir.path().join("killed");
    let mut resume = false;
    let mut kills = 0;
    let mut last_step = 0;
    loop {
        let mut child = trainer(&run, resume).spawn()?;
        if kills < 4 && kill_mid_checkpoint(&mut child, &run, last_step + 5)? {
            kills += 1;
            // The checkpoint `latest` names is complete and loads.
            let c = host_train::checkpoint::latest(&run, (0, 1))?.expect("a checkpoint survives");
            alexnet_host::safetensors_io::load(&c.weights, &alexnet_core::builtin::MICRO)?;
            assert_eq!(c.velocity.len(), 16);
            assert!(c.state.step >= last_step, "went back from {last_step}");
            last_step = c.state.step;
            resume = true;
            continue;
        }
        assert!(child.wait()?.success(), "the resumed trainer failed");
        break;
    }
    assert!(kills >= 2, "only {kills} kills landed");
    let a = host_train::checkpoint::latest(&whole, (0, 1))?.unwrap();
    let b = host_train::checkpoint::latest(&run, (0, 1))?.unwrap();
    assert_eq!(b.state.step, 60);
    assert_eq!(a.state.step, b.state.step);
    let micro = &alexnet_core::builtin::MICRO;
    assert_eq!(
        alexnet_host::safetensors_io::load(&a.weights, micro)?.params,
        alexnet_host::safetensors_io::load(&b.weights, micro)?.params,
        "the killed and resumed run differs from the uninterrupted one"
    );
    eprintln!(
        "{kills} kills during checkpoint writes; final step {}",
        b.state.step
    );
    Ok(())
}
