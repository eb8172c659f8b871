//! Calibration: running the f32 model over sample inputs and recording each activation's
//! range, by min/max or by percentile.

use alexnet_core::Model;
use alexnet_core::RunOptions;
use anyhow::{ensure, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How an activation range is chosen from the calibration data.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Method {
    /// The smallest and largest value seen.
    MinMax,
    /// The given percentile of the values (and its mirror for the minimum), e.g. 99.99:
    /// outliers are clipped for a finer step everywhere else.
    Percentile(f64),
}

/// Values kept per tensor for percentiles (a uniform reservoir sample).
const RESERVOIR: usize = 1 << 18;

/// Range statistics of one tensor.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Smallest value seen.
    pub min: f32,
    /// Largest value seen.
    pub max: f32,
    seen: u64,
    sample: Vec<f32>,
}

impl Stats {
    fn new() -> Self {
        Stats {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            seen: 0,
            sample: Vec::new(),
        }
    }

    fn add(&mut self, values: &[f32], rng: &mut ChaCha8Rng) {
        for &v in values {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            self.seen += 1;
            if self.sample.len() < RESERVOIR {
                self.sample.push(v);
            } else {
                let j = rng.random_range(0..self.seen);
                if (j as usize) < RESERVOIR {
                    self.sample[j as usize] = v;
                }
            }
        }
    }

    /// The range for `method`.
    pub fn range(&self, method: Method) -> (f32, f32) {
        match method {
            Method::MinMax => (self.min, self.max),
            Method::Percentile(p) => {
                let mut s = self.sample.clone();
                s.sort_by(f32::total_cmp);
                let at = |q: f64| s[((q / 100.0) * (s.len() - 1) as f64).round() as usize];
                (at(100.0 - p), at(p))
            }
        }
    }
}

/// Statistics of the input and of every layer's output.
pub struct Calibration {
    /// The input.
    pub input: Stats,
    /// Each layer's output.
    pub layers: Vec<Stats>,
    /// Number of samples.
    pub samples: usize,
}

/// Runs `model` (f32) over `inputs` and gathers the ranges.
pub fn calibrate(
    model: &Model<'_>,
    inputs: &[Vec<f32>],
    mut progress: impl FnMut(usize),
) -> Result<Calibration> {
    ensure!(!inputs.is_empty(), "the calibration set is empty");
    let n = model.layers().len();
    let mut cal = Calibration {
        input: Stats::new(),
        layers: vec![Stats::new(); n],
        samples: inputs.len(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut arena = vec![0u8; model.observed_arena_bytes()];
    let mut logits = vec![0.0f32; model.classes()];
    for (k, input) in inputs.iter().enumerate() {
        ensure!(
            input.iter().all(|v| v.is_finite()),
            "calibration input {k} holds NaN or infinity"
        );
        cal.input.add(input, &mut rng);
        let mut err = None;
        model
            .run(
                input,
                &mut arena,
                &mut logits,
                RunOptions::new().observe(&mut |i, _, act| {
                    if act.iter().any(|v| !v.is_finite()) && err.is_none() {
                        err = Some(i);
                    }
                    cal.layers[i].add(act, &mut rng);
                }),
            )
            .map_err(anyhow::Error::msg)?;
        if let Some(i) = err {
            anyhow::bail!("layer {i} produced NaN or infinity on calibration input {k}");
        }
        progress(k + 1);
    }
    Ok(cal)
}
