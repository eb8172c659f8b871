//! Prints the core/libtorch ratios of the last `cargo bench -p alexnet-benches --bench forward`
//! run as Markdown tables, from criterion's own estimates (the median's point estimate of each
//! benchmark, `<criterion>/<group>/<core|libtorch>/<id>/new/estimates.json`).
//!
//! Run: `cargo run --release -p alexnet-benches --bin bench-summary [CRITERION_DIR]`. The
//! folder defaults to `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the
//! workspace's `target/criterion`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

/// The targets for the paper net, one thread, batch 1.
const TARGET_F32: f64 = 0.8;
const TARGET_INT8: f64 = 0.25;

/// The medians (ns) of one group, by implementation (`core`, `libtorch`) and id, with the
/// time each estimate was written.
type Group = BTreeMap<String, BTreeMap<String, (f64, SystemTime)>>;

fn criterion_dir() -> PathBuf {
    if let Some(dir) = std::env::args_os().nth(1) {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("CRITERION_HOME") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Path::new(&dir).join("criterion");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion")
}

fn read_group(dir: &Path, group: &str) -> Result<Group, String> {
    let mut out = Group::new();
    for implementation in ["core", "libtorch"] {
        let folder = dir.join(group).join(implementation);
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", folder.display()))?;
            let path = entry.path().join("new/estimates.json");
            if !path.is_file() {
                continue;
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let json: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let median = json["median"]["point_estimate"]
                .as_f64()
                .ok_or_else(|| format!("{}: no median point estimate", path.display()))?;
            let written = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            out.entry(implementation.to_string()).or_default().insert(
                entry.file_name().to_string_lossy().into_owned(),
                (median, written),
            );
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no results for group {group} under {}: run `cargo bench -p alexnet-benches --bench forward` first",
            dir.display()
        ));
    }
    Ok(out)
}

fn get(group: &Group, implementation: &str, id: &str) -> Option<f64> {
    group.get(implementation)?.get(id).map(|&(ns, _)| ns)
}

fn ms(ns: Option<f64>) -> String {
    match ns {
        None => "-".into(),
        Some(ns) => {
            let ms = ns / 1e6;
            if ms >= 100.0 {
                format!("{ms:.0} ms")
            } else if ms >= 10.0 {
                format!("{ms:.1} ms")
            } else if ms >= 1.0 {
                format!("{ms:.2} ms")
            } else {
                format!("{ms:.3} ms")
            }
        }
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

fn show(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}"))
}

/// The ratio against its target: `0.61 (<= 0.8: met)`.
fn against(r: Option<f64>, target: f64) -> String {
    match r {
        None => "-".into(),
        Some(r) => format!(
            "{r:.2} (<= {target}: {})",
            if r <= target { "met" } else { "not met" }
        ),
    }
}

/// The ratio against a lower bound: `1.65 (>= 1.8: not met)`.
fn at_least(r: Option<f64>, target: f64) -> String {
    match r {
        None => "-".into(),
        Some(r) => format!(
            "{r:.2} (>= {target}: {})",
            if r >= target { "met" } else { "not met" }
        ),
    }
}

/// The ONNX Runtime peer's medians (ns) of one net, `<criterion>/onnxruntime/<net>.json`.
fn onnxruntime(dir: &Path, net: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("onnxruntime").join(format!("{net}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

/// The core against ONNX Runtime (one intra-op thread), with the targets of the issue "Ahead
/// of ONNX Runtime on one x86-64 core"; the core's batch of 8 is eight passes in a row.
fn onnxruntime_table(dir: &Path, f32s: &Group, int8s: &Group) {
    let batch8 = read_group(dir, "batch_8").ok();
    let two = read_group(dir, "forward_2_threads").ok();
    let b8 = |id: &str| batch8.as_ref().and_then(|g| get(g, "core", id));
    let mut rows = Vec::new();
    for net in ["paper", "torchvision"] {
        let Some(ort) = onnxruntime(dir, net) else {
            continue;
        };
        let ort_ns = |key: &str| ort[key].as_f64();
        let (int8_target, version) = (if net == "paper" { 0.35 } else { 1.0 }, &ort["onnxruntime"]);
        let f32 = (get(f32s, "core", net), ort_ns("f32_b1_ns"));
        let int8 = (get(int8s, "core", net), ort_ns("int8_b1_ns"));
        rows.push(format!(
            "| {net}, f32, batch 1 | {} | {} | {} |",
            ms(f32.0),
            ms(f32.1),
            against(ratio(f32.0, f32.1), 1.0)
        ));
        rows.push(format!(
            "| {net}, int8, batch 1 | {} | {} | {} |",
            ms(int8.0),
            ms(int8.1),
            against(ratio(int8.0, int8.1), int8_target)
        ));
        let f32_b8 = (b8(net), ort_ns("f32_b8_ns"));
        let int8_b8 = (b8(&format!("{net}-int8")), ort_ns("int8_b8_ns"));
        // Throughput: ONNX Runtime's time over the core's.
        rows.push(format!(
            "| {net}, f32, batch 8 (throughput, core / ONNX Runtime) | {} | {} | {} |",
            ms(f32_b8.0),
            ms(f32_b8.1),
            show(ratio(f32_b8.1, f32_b8.0))
        ));
        let int8_b8_ratio = ratio(int8_b8.1, int8_b8.0);
        let int8_b8_ratio = if net == "paper" {
            at_least(int8_b8_ratio, 1.0)
        } else {
            show(int8_b8_ratio)
        };
        rows.push(format!("| {net}, int8, batch 8 (throughput, core / ONNX Runtime) | {} | {} | {int8_b8_ratio} |", ms(int8_b8.0), ms(int8_b8.1)));
        if net == "paper" {
            eprintln!("onnxruntime {version}");
        }
    }
    if rows.is_empty() {
        return;
    }
    println!();
    println!("The core against ONNX Runtime, one thread each (its own QDQ int8 model, per-channel weights, the same calibration images):");
    println!();
    println!("| figure | core | ONNX Runtime | core / ONNX Runtime |");
    println!("|--------|-----:|-------------:|--------------------:|");
    for row in rows {
        println!("{row}");
    }
    if let Some(two) = two {
        let (t1, t2) = (get(f32s, "core", "paper"), get(&two, "core", "paper"));
        println!(
            "| paper, f32, 2 threads / 1 thread (speed-up) | {} | {} | {} |",
            ms(t2),
            ms(t1),
            at_least(ratio(t1, t2), 1.8)
        );
    }
}

fn main() -> ExitCode {
    let dir = criterion_dir();
    let dir = dir.canonicalize().unwrap_or(dir);
    let groups: Result<Vec<Group>, String> = ["forward_f32", "forward_int8", "paper_layers_f32"]
        .iter()
        .map(|g| read_group(&dir, g))
        .collect();
    let [f32s, int8s, layers] = match groups {
        Ok(g) => <[Group; 3]>::try_from(g).unwrap(),
        Err(e) => {
            eprintln!("bench-summary: {e}");
            return ExitCode::FAILURE;
        }
    };

    // The paper net carries the targets.
    let mut nets: Vec<&String> = f32s.values().flat_map(|m| m.keys()).collect();
    nets.sort();
    nets.dedup();
    println!("Whole nets, batch 1, one thread (median of criterion's estimates):");
    println!();
    println!("| net | core f32 | libtorch f32 | core f32 / libtorch f32 | core int8 | core int8 / libtorch f32 |");
    println!("|-----|---------:|-------------:|------------------------:|----------:|-------------------------:|");
    for net in nets {
        let core = get(&f32s, "core", net);
        let peer = get(&f32s, "libtorch", net);
        let int8 = get(&int8s, "core", net);
        let (rf, ri) = (ratio(core, peer), ratio(int8, peer));
        let (rf, ri) = if net == "paper" {
            (against(rf, TARGET_F32), against(ri, TARGET_INT8))
        } else {
            (show(rf), show(ri))
        };
        println!(
            "| {net} | {} | {} | {rf} | {} | {ri} |",
            ms(core),
            ms(peer),
            ms(int8)
        );
    }
    println!();
    println!(
        "Targets (paper net): core f32 / libtorch f32 <= {TARGET_F32}, core int8 / libtorch f32 <= {TARGET_INT8}."
    );
    println!();

    println!("Paper net by layer, f32:");
    println!();
    println!("| layer | core | libtorch | core / libtorch |");
    println!("|-------|-----:|---------:|----------------:|");
    let mut ids: Vec<&String> = layers.values().flat_map(|m| m.keys()).collect();
    ids.sort();
    ids.dedup();
    let (mut core_sum, mut peer_sum) = (0.0, 0.0);
    for id in ids {
        let (core, peer) = (get(&layers, "core", id), get(&layers, "libtorch", id));
        core_sum += core.unwrap_or(0.0);
        peer_sum += peer.unwrap_or(0.0);
        println!(
            "| {id} | {} | {} | {} |",
            ms(core),
            ms(peer),
            show(ratio(core, peer))
        );
    }
    println!(
        "| sum | {} | {} | {} |",
        ms(Some(core_sum)),
        ms(Some(peer_sum)),
        show(ratio(Some(core_sum), Some(peer_sum)))
    );

    // Two threads (the core's kernels split by output channels; libtorch's intra-op pool).
    if let Ok(two) = read_group(&dir, "forward_2_threads") {
        let peer = get(&two, "libtorch", "paper");
        let (core, int8) = (get(&two, "core", "paper"), get(&two, "core", "paper-int8"));
        println!();
        println!("Paper net, two threads each:");
        println!();
        println!("| core f32 | libtorch f32 | core f32 / libtorch f32 | core int8 | core int8 / libtorch f32 |");
        println!("|---------:|-------------:|------------------------:|----------:|-------------------------:|");
        println!(
            "| {} | {} | {} | {} | {} |",
            ms(core),
            ms(peer),
            show(ratio(core, peer)),
            ms(int8),
            show(ratio(int8, peer))
        );
    }

    onnxruntime_table(&dir, &f32s, &int8s);

    // Results of different runs would make the ratios meaningless: say so.
    let times: Vec<SystemTime> = [&f32s, &int8s, &layers]
        .iter()
        .flat_map(|g| g.values())
        .flat_map(|m| m.values().map(|&(_, t)| t))
        .collect();
    let (first, last) = (times.iter().min(), times.iter().max());
    if let (Some(first), Some(last)) = (first, last) {
        let spread = last.duration_since(*first).unwrap_or_default();
        if spread.as_secs() > 3600 {
            eprintln!(
                "bench-summary: warning: the estimates were written {} min apart; they may come from different runs",
                spread.as_secs() / 60
            );
        }
    }
    println!();
    println!("Read from {}.", dir.display());
    ExitCode::SUCCESS
}
