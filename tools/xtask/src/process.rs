//! Running commands and titled steps: the leaf every task builds on (it imports nothing from
//! the rest of xtask, so the task modules can all use it without a cycle).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The workspace root (the xtask crate lives in `tools/xtask`).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| ".".into())
}

/// The cargo that runs xtask, in the workspace root.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs a command, failing with its command line if it fails.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed ({status})"))
    }
}

/// Runs a titled step and reports its duration.
pub fn step<T>(title: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    eprintln!("\n==> {title}");
    let start = Instant::now();
    let out = f();
    let secs = start.elapsed().as_secs_f64();
    match &out {
        Ok(_) => eprintln!("    done in {secs:.1} s"),
        Err(_) => eprintln!("    FAILED after {secs:.1} s"),
    }
    out
}

/// Runs a command, echoing its output as it comes, and returns stdout and stderr together.
pub fn run_tee(cmd: &mut Command) -> Result<String, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    // Echoes raw chunks as they arrive, not lines: progress bars redraw a line in place with
    // '\r' and would otherwise appear only when their line ends.
    fn pump<R: Read + Send + 'static>(
        mut from: R,
        to_stderr: bool,
    ) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = match from.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                let bytes = &chunk[..n];
                let _ = if to_stderr {
                    std::io::stderr().write_all(bytes)
                } else {
                    std::io::stdout().write_all(bytes)
                };
                all.extend_from_slice(bytes);
            }
            String::from_utf8_lossy(&all).into_owned()
        })
    }
    let out = pump(child.stdout.take().ok_or("no stdout")?, false);
    let err = pump(child.stderr.take().ok_or("no stderr")?, true);
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {cmd:?}: {e}"))?;
    let text = out.join().unwrap_or_default() + &err.join().unwrap_or_default();
    if status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd:?} failed ({status})"))
    }
}

/// Runs a titled step, reports and records its duration.
pub fn timed<T>(
    timings: &mut Vec<(String, f64)>,
    title: &str,
    f: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    let start = Instant::now();
    let out = step(title, f);
    timings.push((title.to_string(), start.elapsed().as_secs_f64()));
    out
}
