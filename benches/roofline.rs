//! Where each net's time goes on this machine, layer by layer, against what the machine
//! can do: a multiply-add loop's peak (f32 without FMA, as the f32 contract computes; with FMA
//! for comparison; int8 as `vpmaddwd` pairs, the AVX2 int8 kernels' instruction, and, on a
//! machine with AVX-512 VNNI, 16-lane f32 and `vpdpbusd`, the AVX-512 kernels' instructions)
//! and a streaming read's bandwidth, then each layer's time, GMAC/s and share of that peak (and the
//! fully connected layers' weight stream in GB/s), f32 and int8, one thread and two.
//!
//! Run: `cargo run --release -p alexnet-benches --bin roofline [--whole] [NET...]` with NET
//! one of `paper`, `caffe`, `torchvision`, `micro` (default: `paper torchvision`; `cargo xtask
//! bench` runs it so after the criterion benchmarks). About half a minute per net; figures
//! for the machine it runs on. `--whole` prints only the whole passes (a few seconds: for
//! timing two builds against each other, alternately).

use alexnet_core::builtin::{self, PAPER, TORCHVISION};
use alexnet_core::kernels::{native, Kernels};
use alexnet_core::{Arch, Layer, Model, RunOptions, Shape};
use alexnet_host::init::paper_init;
use alexnet_host::parallel::Parallel;
use alexnet_host::quantize::{self, Method};
use alexnet_host::BlobFile;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Runs of the whole net per configuration; each layer's median is reported.
const RUNS: usize = 9;

/// What one core of this machine can do, measured.
struct Peak {
    /// f32 multiply-accumulates per second as a multiply then an add (the contract's order).
    f32_mul_add: f64,
    /// The same with fused multiply-adds (what the contract rules out).
    f32_fma: f64,
    /// int8 multiply-accumulates per second through `vpmaddwd` and `vpaddd`.
    int8_madd: f64,
    /// With AVX-512 VNNI: f32 multiply-accumulates per second as a multiply then an add on
    /// 16 lanes, and int8 ones through `vpdpbusd` on 64 bytes.
    avx512: Option<(f64, f64)>,
    /// With AVX-512: f32 fused multiply-adds on 16 lanes (what a runtime free of the
    /// contract's rule can reach).
    f32_fma_512: Option<f64>,
    /// Bytes per second of one thread reading a buffer far larger than the caches.
    stream_read: f64,
    /// The f32 multiply-add loop on two threads at once, both together: twice `f32_mul_add`
    /// if the two are cores of their own, about as much if they share one core's pipes.
    f32_mul_add_two: f64,
    /// The streaming read on two threads at once, both together.
    stream_read_two: f64,
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let whole_only = args.iter().any(|a| a == "--whole");
    args.retain(|a| a != "--whole");
    let nets: Vec<&Arch<'static>> = match args {
        names if names.is_empty() => vec![&PAPER, &TORCHVISION],
        names => names
            .iter()
            .map(|name| {
                builtin::by_name(name).unwrap_or_else(|| {
                    eprintln!("roofline: unknown net {name:?}; the built-in nets: paper, caffe, torchvision, micro");
                    std::process::exit(2)
                })
            })
            .collect(),
    };
    println!("# Roofline on this machine (one core's peak, measured)\n");
    println!("kernels: {}", native().name());
    if whole_only {
        for arch in nets {
            let (f32_file, int8_file) = blobs(arch);
            let f32_model = f32_file.model().expect("the f32 blob parses");
            let int8_model = int8_file.model().expect("the int8 blob parses");
            let (input, codes) = inputs(arch, &int8_model);
            whole_passes(arch, &f32_model, &input, &int8_model, &codes);
        }
        return;
    }
    let peak = measure_peak();
    println!(
        "peak: f32 {:.1} GMAC/s with a multiply and an add (contract), {:.1} GMAC/s with FMA; int8 {:.1} GMAC/s (vpmaddwd); streaming read {:.1} GB/s",
        peak.f32_mul_add / 1e9,
        peak.f32_fma / 1e9,
        peak.int8_madd / 1e9,
        peak.stream_read / 1e9
    );
    if let (Some((f32_peak, int8_peak)), Some(fma)) = (peak.avx512, peak.f32_fma_512) {
        println!(
            "AVX-512 peak: f32 {:.1} GMAC/s with a multiply and an add on 16 lanes ({:.1} with FMA); int8 {:.1} GMAC/s (vpdpbusd)",
            f32_peak / 1e9,
            fma / 1e9,
            int8_peak / 1e9
        );
    }
    println!(
        "two threads at once: f32 {:.1} GMAC/s ({:.2}x one), streaming read {:.1} GB/s ({:.2}x one)\n",
        peak.f32_mul_add_two / 1e9,
        peak.f32_mul_add_two / peak.f32_mul_add,
        peak.stream_read_two / 1e9,
        peak.stream_read_two / peak.stream_read
    );
    for arch in nets {
        report(arch, &peak);
    }
}

/// One net's whole passes (fused and unfused) and its per-layer tables, f32 and int8.
fn report(arch: &Arch<'_>, peak: &Peak) {
    // The peaks of the instructions the native kernels run.
    let avx512 = peak.avx512.filter(|_| native().name().contains("AVX-512"));
    let (f32_peak, int8_peak) = avx512.unwrap_or((peak.f32_mul_add, peak.int8_madd));
    let (f32_file, int8_file) = blobs(arch);
    let f32_model = f32_file.model().expect("the f32 blob parses");
    let int8_model = int8_file.model().expect("the int8 blob parses");
    let (input, codes) = inputs(arch, &int8_model);
    whole_passes(arch, &f32_model, &input, &int8_model, &codes);
    let two = Parallel::new(2).expect("a two-thread pool");
    let [f32_one, f32_two] = layer_times(&f32_model, &input, [native(), &two]);
    let [int8_one, int8_two] = layer_times(&int8_model, &codes, [native(), &two]);
    print_table("f32", arch, &f32_one, &f32_two, f32_peak, 4, peak);
    print_table("int8", arch, &int8_one, &int8_two, int8_peak, 1, peak);
}

/// The net's f32 blob (the seeded initialization) and its int8 quantization (calibrated on
/// two synthetic inputs).
fn blobs(arch: &Arch<'_>) -> (BlobFile, BlobFile) {
    let spec = paper_init(arch, 0).expect("the net's initialization");
    let f32_file = BlobFile::from_bytes(&spec.to_blob().expect("an f32 blob"), arch.name);
    let f32_model = f32_file.model().expect("the f32 blob parses");
    let calibration = [synthetic_input(arch, 1), synthetic_input(arch, 2)];
    let cal = quantize::calibrate(&f32_model, &calibration, |_| {}).expect("calibration");
    let (int8_spec, _) = quantize::quantize(&f32_model, &cal, Method::MinMax).expect("int8");
    let int8_file = BlobFile::from_bytes(&int8_spec.to_blob().expect("an int8 blob"), arch.name);
    (f32_file, int8_file)
}

/// The timed input: a synthetic image and its int8 codes.
fn inputs(arch: &Arch<'_>, int8_model: &Model<'_>) -> (Vec<f32>, Vec<i8>) {
    let input = synthetic_input(arch, 0);
    let mut codes = vec![0i8; arch.input_len()];
    int8_model
        .quantize_input(&input, &mut codes)
        .expect("input codes");
    (input, codes)
}

/// The whole-pass table: f32 and int8, fused and unfused.
fn whole_passes(
    arch: &Arch<'_>,
    f32_model: &Model<'_>,
    input: &[f32],
    int8_model: &Model<'_>,
    codes: &[i8],
) {
    println!("## The {} net: whole pass, one thread, fastest of {RUNS} (the conv -> ReLU/LRN -> pool chains fused, as `forward` runs them in the fused arena, and unfused)\n", arch.name);
    println!("| precision | fused | unfused | fused / unfused |");
    println!("|---|---:|---:|---:|");
    let (fused, unfused) = whole_pass(f32_model, input);
    println!(
        "| f32 | {:.2} ms | {:.2} ms | {:.2} |",
        ms(fused),
        ms(unfused),
        ms(fused) / ms(unfused)
    );
    let (fused, unfused) = whole_pass(int8_model, codes);
    println!(
        "| int8 | {:.2} ms | {:.2} ms | {:.2} |\n",
        ms(fused),
        ms(unfused),
        ms(fused) / ms(unfused)
    );
}

/// An input of the net's shape with values in the range of a normalized image.
fn synthetic_input(arch: &Arch<'_>, seed: usize) -> Vec<f32> {
    (0..arch.input_len())
        .map(|i| (((i + seed * 131) * 7919) % 255) as f32 / 64.0 - 2.0)
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The fastest of [`RUNS`] whole passes with the native kernels, fused (in the fused arena,
/// which leaves them no choice) and unfused, the two alternating (after one of each to warm
/// up).
fn whole_pass<T: alexnet_core::model::Element + Default>(
    model: &Model<'_>,
    input: &[T],
) -> (Duration, Duration) {
    let mut fused_arena = vec![0u8; model.arena_bytes()];
    let mut arena = vec![0u8; model.observed_arena_bytes()];
    let mut logits = vec![T::default(); model.classes()];
    let mut best = [Duration::MAX; 2];
    for run in 0..=RUNS {
        for (fused, best) in [true, false].into_iter().zip(&mut best) {
            let options = RunOptions::new().kernels(native());
            let (options, arena) = if fused {
                (options, &mut fused_arena)
            } else {
                (options.unfused(), &mut arena)
            };
            let start = Instant::now();
            model
                .run(black_box(input), arena, &mut logits, options)
                .expect("the forward pass");
            if run > 0 {
                *best = (*best).min(start.elapsed());
            }
        }
    }
    (best[0], best[1])
}

/// Each layer's median time over [`RUNS`] unfused runs with each kernel set in turn (the
/// observer notes when each layer ends), after one run to warm up. One set's runs follow
/// each other: run by run alternation left the thread pool's workers asleep between their
/// runs, and waking the second core of this virtual machine cost the first layer
/// milliseconds.
fn layer_times<T: alexnet_core::model::Element + Default>(
    model: &Model<'_>,
    input: &[T],
    sets: [&dyn Kernels; 2],
) -> [Vec<Duration>; 2] {
    let layers = model.layers().len();
    let mut arena = vec![0u8; model.observed_arena_bytes()];
    let mut logits = vec![T::default(); model.classes()];
    sets.map(|kernels| {
        let mut samples = vec![Vec::with_capacity(RUNS); layers];
        for run in 0..=RUNS {
            let mut ends = Vec::with_capacity(layers);
            let mut see = |_: usize, _: Shape, _: &[T]| ends.push(Instant::now());
            let start = Instant::now();
            model
                .run(
                    black_box(input),
                    &mut arena,
                    &mut logits,
                    RunOptions::new().kernels(kernels).observe(&mut see),
                )
                .expect("the forward pass");
            if run == 0 {
                continue;
            }
            let mut previous = start;
            for (layer, end) in ends.into_iter().enumerate() {
                samples[layer].push(end - previous);
                previous = end;
            }
        }
        samples
            .into_iter()
            .map(|mut s| {
                s.sort();
                s[s.len() / 2]
            })
            .collect()
    })
}

#[allow(clippy::too_many_arguments)]
fn print_table(
    precision: &str,
    arch: &Arch<'_>,
    one: &[Duration],
    two: &[Duration],
    mac_peak: f64,
    weight_bytes: usize,
    peak: &Peak,
) {
    println!(
        "## The {} net, {precision}, one thread (two threads)\n",
        arch.name
    );
    println!("| layer | M MACs | ms | GMAC/s | % of peak | weights GB/s (% of stream) | ms, 2 threads | speed-up |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let (mut total_one, mut total_two) = (Duration::ZERO, Duration::ZERO);
    for step in arch.walk().map(|s| s.expect("a valid descriptor")) {
        let (t1, t2) = (one[step.index], two[step.index]);
        total_one += t1;
        total_two += t2;
        let name = arch.param_layer_name(step.index).map_or_else(
            || format!("{:02} {}", step.index, step.layer.kind_name()),
            |n| format!("{:02} {n}", step.index),
        );
        let macs = step.layer.macs(step.input, step.output) as f64;
        let secs = t1.as_secs_f64();
        let (gmacs, share) = if macs > 0.0 {
            (
                format!("{:.1}", macs / secs / 1e9),
                format!("{:.0} %", 100.0 * macs / secs / mac_peak),
            )
        } else {
            ("".into(), "".into())
        };
        let stream = match step.layer {
            Layer::Linear { .. } => {
                let bytes = macs * weight_bytes as f64;
                format!(
                    "{:.1} ({:.0} %)",
                    bytes / secs / 1e9,
                    100.0 * bytes / secs / peak.stream_read
                )
            }
            _ => String::new(),
        };
        println!(
            "| {name} | {:.1} | {:.3} | {gmacs} | {share} | {stream} | {:.3} | {:.2}x |",
            macs / 1e6,
            secs * 1e3,
            t2.as_secs_f64() * 1e3,
            secs / t2.as_secs_f64()
        );
    }
    let macs = arch.macs() as f64;
    println!(
        "| whole (unfused) | {:.1} | {:.2} | {:.1} | {:.0} % | | {:.2} | {:.2}x |\n",
        macs / 1e6,
        total_one.as_secs_f64() * 1e3,
        macs / total_one.as_secs_f64() / 1e9,
        100.0 * macs / total_one.as_secs_f64() / mac_peak,
        total_two.as_secs_f64() * 1e3,
        total_one.as_secs_f64() / total_two.as_secs_f64()
    );
}

/// The best of a few timed runs of `f`, which returns the work it did (MACs or bytes).
fn best_rate(f: impl Fn() -> f64) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            let work = f();
            work / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

/// [`best_rate`] of `f` run on two threads at once, the work of both over the time of both.
fn best_rate_two(f: impl Fn() -> f64 + Sync) -> f64 {
    best_rate(|| {
        std::thread::scope(|s| {
            let other = s.spawn(&f);
            f() + other.join().expect("the second thread")
        })
    })
}

#[cfg(target_arch = "x86_64")]
fn measure_peak() -> Peak {
    assert!(
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
        "the peak loops need AVX2 and FMA"
    );
    let turns = 20_000_000u64;
    // Streaming read: 1 GiB, far beyond any cache.
    let buffer = vec![1u8; 1 << 30];
    // SAFETY (all of them): AVX2 and FMA were detected above.
    Peak {
        f32_mul_add: best_rate(|| unsafe { x86::mul_add(turns) }),
        f32_fma: best_rate(|| unsafe { x86::fma(turns) }),
        int8_madd: best_rate(|| unsafe { x86::madd(turns) }),
        avx512: (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"))
            .then(|| {
                // SAFETY: AVX-512 F and VNNI were detected just above.
                (
                    best_rate(|| unsafe { x86::mul_add_512(turns) }),
                    best_rate(|| unsafe { x86::dpbusd(turns) }),
                )
            }),
        f32_fma_512: is_x86_feature_detected!("avx512f").then(|| {
            // SAFETY: AVX-512 F was detected just above.
            best_rate(|| unsafe { x86::fma_512(turns) })
        }),
        stream_read: best_rate(|| unsafe { x86::read(&buffer) }),
        f32_mul_add_two: best_rate_two(|| unsafe { x86::mul_add(turns) }),
        stream_read_two: best_rate_two(|| unsafe { x86::read(&buffer) }),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn measure_peak() -> Peak {
    panic!("the peak loops are written for x86-64")
}

/// The peak loops: enough independent chains to keep every pipe busy through the
/// instructions' latencies, operands from `black_box` so that nothing folds away. Each
/// returns the multiply-accumulates (or bytes) it did.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// Chains per loop: 3-4 cycle latencies, two pipes of each kind.
    const CHAINS: usize = 12;

    /// `turns` rounds of `step` on each of [`CHAINS`] independent values; the number of
    /// chain steps it made.
    #[inline(always)]
    fn chains<T: Copy>(turns: u64, start: T, step: impl Fn(T) -> T) -> u64 {
        let mut acc = [start; CHAINS];
        for _ in 0..turns {
            for a in &mut acc {
                *a = step(*a);
            }
        }
        black_box(&acc);
        turns * CHAINS as u64
    }

    /// A multiply then an add per lane: 8 MACs per step.
    #[target_feature(enable = "avx2")]
    pub unsafe fn mul_add(turns: u64) -> f64 {
        let m = _mm256_set1_ps(black_box(0.999_999));
        let c = _mm256_set1_ps(black_box(1e-7));
        let start = _mm256_set1_ps(1.0);
        (8 * chains(turns, start, |a| _mm256_add_ps(_mm256_mul_ps(a, m), c))) as f64
    }

    /// One fused multiply-add per lane: 8 MACs per step.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma(turns: u64) -> f64 {
        let m = _mm256_set1_ps(black_box(0.999_999));
        let c = _mm256_set1_ps(black_box(1e-7));
        let start = _mm256_set1_ps(1.0);
        (8 * chains(turns, start, |a| _mm256_fmadd_ps(a, m, c))) as f64
    }

    /// `vpmaddwd` (16 products of 16-bit pairs summed in pairs) and `vpaddd`: 16 MACs.
    #[target_feature(enable = "avx2")]
    pub unsafe fn madd(turns: u64) -> f64 {
        let w = _mm256_set1_epi16(black_box(3));
        let start = _mm256_set1_epi32(1);
        (16 * chains(turns, start, |a| {
            _mm256_add_epi32(a, _mm256_madd_epi16(a, w))
        })) as f64
    }

    /// A multiply then an add on 16 lanes: 16 MACs per step.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn mul_add_512(turns: u64) -> f64 {
        let m = _mm512_set1_ps(black_box(0.999_999));
        let c = _mm512_set1_ps(black_box(1e-7));
        let start = _mm512_set1_ps(1.0);
        (16 * chains(turns, start, |a| _mm512_add_ps(_mm512_mul_ps(a, m), c))) as f64
    }

    /// One fused multiply-add on 16 lanes: 16 MACs per step.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma_512(turns: u64) -> f64 {
        let m = _mm512_set1_ps(black_box(0.999_999));
        let c = _mm512_set1_ps(black_box(1e-7));
        let start = _mm512_set1_ps(1.0);
        (16 * chains(turns, start, |a| _mm512_fmadd_ps(a, m, c))) as f64
    }

    /// `vpdpbusd`: 64 byte products summed in fours into 16 lanes, 64 MACs per step.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn dpbusd(turns: u64) -> f64 {
        let u = _mm512_set1_epi8(black_box(3));
        let w = _mm512_set1_epi8(black_box(-2));
        let start = _mm512_set1_epi32(1);
        (64 * chains(turns, start, |a| _mm512_dpbusd_epi32(a, u, w))) as f64
    }

    /// Sums the buffer's bytes as 64-bit lanes, four loads per turn.
    #[target_feature(enable = "avx2")]
    pub unsafe fn read(buffer: &[u8]) -> f64 {
        let mut acc = [_mm256_setzero_si256(); 4];
        let chunks = buffer.chunks_exact(128);
        for chunk in chunks {
            let p = chunk.as_ptr() as *const __m256i;
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: `chunk` holds 128 bytes, four unaligned 32-byte loads.
                *a = _mm256_add_epi64(*a, unsafe { _mm256_loadu_si256(p.add(k)) });
            }
        }
        black_box(acc);
        buffer.len() as f64
    }
}
