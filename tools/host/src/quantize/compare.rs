//! The int8 path against the f32 path, layer by layer: what quantization costs. One
//! comparison serves `alexnet diff` (one image, every figure) and the quantizer's report
//! (many images, SQNR and top-1 agreement).

use alexnet_core::{Layer, Model, Precision, RunOptions, Shape};
use anyhow::{ensure, Result};

/// The error of one int8 layer's dequantized output against the f32 output, summed over
/// the inputs compared so far.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerError {
    /// Layer index.
    pub index: usize,
    /// `conv2+relu` (a convolution or linear layer with its fused ReLU), `lrn`, `maxpool`...
    pub name: String,
    /// Output shape.
    pub shape: Shape,
    /// Sum of the squared f32 values.
    pub signal: f64,
    /// Sum of the squared errors.
    pub noise: f64,
    /// Largest |f32 value|.
    pub max_ref: f64,
    /// Largest |error|.
    pub max_err: f64,
    /// The int8 output's scale: the size of one step.
    pub scale: f32,
}

impl LayerError {
    /// Signal-to-quantization-noise ratio in dB (infinite when there is no error).
    pub fn sqnr_db(&self) -> f64 {
        10.0 * (self.signal / self.noise.max(f64::MIN_POSITIVE)).log10()
    }

    /// The largest error in output steps (LSB).
    pub fn max_err_steps(&self) -> f64 {
        self.max_err / self.scale as f64
    }
}

/// Both models' logits for one input, the int8 ones dequantized.
#[derive(Clone, Debug, PartialEq)]
pub struct Logits {
    /// The f32 model's.
    pub f32: Vec<f32>,
    /// The int8 model's, dequantized.
    pub int8: Vec<f32>,
}

/// An f32 model and its int8 quantization run side by side; [`Comparison::add`] runs one
/// input through both and accumulates every layer's error.
pub struct Comparison<'m> {
    f32_model: &'m Model<'m>,
    int8_model: &'m Model<'m>,
    /// For each layer, the f32 activation its int8 output is compared with.
    reference: Vec<usize>,
    /// For each layer, its row in `layers` (`None` for layers that compute nothing new).
    row: Vec<Option<usize>>,
    layers: Vec<LayerError>,
    samples: usize,
    top1_agreements: usize,
    top5_agreements: usize,
    saturated: usize,
    arena32: Vec<u8>,
    arena8: Vec<u8>,
}

impl<'m> Comparison<'m> {
    /// Checks that `int8_model` can be compared with `f32_model`: the precisions and the
    /// same architecture.
    pub fn new(f32_model: &'m Model<'m>, int8_model: &'m Model<'m>) -> Result<Self> {
        ensure!(
            f32_model.precision() == Precision::F32,
            "the reference is not an f32 model"
        );
        ensure!(
            int8_model.precision() == Precision::Int8,
            "the model to check is not an int8 model (make one with `quantize`)"
        );
        ensure!(
            f32_model.arch() == int8_model.arch(),
            "the two models hold different architectures ({} and {})",
            f32_model.arch().name,
            int8_model.arch().name
        );
        let arch = f32_model.arch();
        let layers = f32_model.layers();
        let reference = (0..layers.len())
            .map(|i| reference_index(layers, i))
            .collect();
        let mut row = vec![None; layers.len()];
        let mut rows = Vec::new();
        for step in arch.walk() {
            let step = step.map_err(|e| anyhow::anyhow!("{}", alexnet_core::Error::Arch(e)))?;
            let i = step.index;
            if !computes(&step.layer) {
                continue;
            }
            let name = arch
                .param_layer_name(i)
                .map_or_else(|| step.layer.kind_name().to_string(), |n| n.to_string());
            row[i] = Some(rows.len());
            rows.push(LayerError {
                index: i,
                name: if reference_index(layers, i) != i {
                    format!("{name}+relu")
                } else {
                    name
                },
                shape: step.output,
                signal: 0.0,
                noise: 0.0,
                max_ref: 0.0,
                max_err: 0.0,
                scale: int8_model.quantization().layers[i].output.scale,
            });
        }
        Ok(Comparison {
            f32_model,
            int8_model,
            reference,
            row,
            layers: rows,
            samples: 0,
            top1_agreements: 0,
            top5_agreements: 0,
            saturated: 0,
            arena32: vec![0u8; f32_model.observed_arena_bytes()],
            arena8: vec![0u8; int8_model.observed_arena_bytes()],
        })
    }

    /// Runs `input` (preprocessed, f32) through both models, adds every layer's error to
    /// the totals, and returns both logits.
    pub fn add(&mut self, input: &[f32]) -> Result<Logits> {
        let (f32_model, int8_model) = (self.f32_model, self.int8_model);
        let mut acts: Vec<Vec<f32>> = vec![Vec::new(); f32_model.layers().len()];
        let mut f32_logits = vec![0.0f32; f32_model.classes()];
        f32_model
            .run(
                input,
                &mut self.arena32,
                &mut f32_logits,
                RunOptions::new().observe(&mut |i, _, a| acts[i] = a.to_vec()),
            )
            .map_err(anyhow::Error::msg)?;
        let mut codes = vec![0i8; int8_model.input_len()];
        int8_model
            .quantize_input(input, &mut codes)
            .map_err(anyhow::Error::msg)?;
        let q = int8_model.quantization();
        let mut int8_logits = vec![0i8; int8_model.classes()];
        let (reference, row, layers) = (&self.reference, &self.row, &mut self.layers);
        int8_model
            .run(
                &codes,
                &mut self.arena8,
                &mut int8_logits,
                RunOptions::new().observe(&mut |i, _, a| {
                    let Some(Some(r)) = row.get(i) else { return };
                    let e = &mut layers[*r];
                    let p = q.layers[i].output;
                    for (&c, &x) in a.iter().zip(&acts[reference[i]]) {
                        let deq = (c as i32 - p.zero_point) as f64 * p.scale as f64;
                        let x = x as f64;
                        let err = (x - deq).abs();
                        e.signal += x * x;
                        e.noise += err * err;
                        e.max_ref = e.max_ref.max(x.abs());
                        e.max_err = e.max_err.max(err);
                    }
                }),
            )
            .map_err(anyhow::Error::msg)?;
        // The top logit clipped at the largest code: its f32 value beyond what 127 stands for,
        // or another class there too (a tie the f32 logits do not have). The image that set
        // a min/max range reaches 127 exactly, unclipped: not counted.
        let logits_params = q.layers[q.layers.len().saturating_sub(1)].output;
        let top_code = (i32::from(i8::MAX) - logits_params.zero_point) as f32 * logits_params.scale;
        let at_top = int8_logits.iter().filter(|&&c| c == i8::MAX).count();
        let f32_top = f32_logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        self.saturated += usize::from(at_top >= 2 || (at_top == 1 && f32_top > top_code));
        let mut deq = vec![0.0f32; int8_logits.len()];
        int8_model
            .dequantize_logits(&int8_logits, &mut deq)
            .map_err(anyhow::Error::msg)?;
        let logits = Logits {
            f32: f32_logits,
            int8: deq,
        };
        self.samples += 1;
        let [[f32_best], [int8_best]] = logits.top::<1>();
        self.top1_agreements += usize::from(f32_best == int8_best);
        let mut int8_top5 = vec![0usize; 5.min(logits.int8.len())];
        let k = alexnet_core::postprocess::top_k(&logits.int8, &mut int8_top5);
        self.top5_agreements += usize::from(int8_top5[..k].contains(&f32_best));
        Ok(logits)
    }

    /// One row per layer that computes a new tensor (convolution, linear, LRN, pooling).
    pub fn layers(&self) -> &[LayerError] {
        &self.layers
    }

    /// Inputs compared so far.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Fraction of the inputs whose int8 top-1 class is the f32 one (0 before any input).
    pub fn top1_agreement(&self) -> f64 {
        self.top1_agreements as f64 / self.samples.max(1) as f64
    }

    /// Fraction of the inputs whose f32 top-1 class is among the int8 top 5.
    pub fn top5_agreement(&self) -> f64 {
        self.top5_agreements as f64 / self.samples.max(1) as f64
    }

    /// Fraction of the inputs whose largest int8 logit is clipped at the largest code, 127:
    /// its f32 value above the range 127 stands for, or tied there with another class.
    pub fn saturated_top(&self) -> f64 {
        self.saturated as f64 / self.samples.max(1) as f64
    }
}

impl Logits {
    /// The `K` best classes of each model, best first: `[f32, int8]`.
    pub fn top<const K: usize>(&self) -> [[usize; K]; 2] {
        let mut best = [[0usize; K]; 2];
        alexnet_core::postprocess::top_k(&self.f32, &mut best[0]);
        alexnet_core::postprocess::top_k(&self.int8, &mut best[1]);
        best
    }
}

/// Which f32 activation int8 layer `i`'s output corresponds to: a convolution or linear
/// layer followed by ReLU outputs the ReLU's result (the ReLU is fused into its clamp).
fn reference_index(layers: &[Layer], i: usize) -> usize {
    let fused = matches!(layers.get(i), Some(Layer::Conv(_) | Layer::Linear { .. }))
        && matches!(layers.get(i + 1), Some(Layer::Relu));
    if fused {
        i + 1
    } else {
        i
    }
}

/// Whether a layer computes a new tensor (the rows worth reporting).
fn computes(layer: &Layer) -> bool {
    matches!(
        layer,
        Layer::Conv(_)
            | Layer::Linear { .. }
            | Layer::Lrn(_)
            | Layer::MaxPool(_)
            | Layer::AdaptiveAvgPool { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize::test_support::quantized_micro;

    #[test]
    fn rows_errors_and_agreement() {
        let m = quantized_micro(3);
        let (f32_model, int8_model) = (m.f32_blob.model().unwrap(), m.int8_blob.model().unwrap());
        let inputs = &m.inputs;
        let mut c = Comparison::new(&f32_model, &int8_model).unwrap();
        assert_eq!(c.top1_agreement(), 0.0);
        let names: Vec<&str> = c.layers().iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names[..4], ["conv1+relu", "lrn", "maxpool", "conv2+relu"]);
        assert_eq!(names.last(), Some(&"fc8"));
        assert_eq!(c.layers().len(), 13);
        let mut agreements = 0;
        for input in inputs {
            let logits = c.add(input).unwrap();
            // Both logits are what the models compute on their own.
            let mut plain = vec![0.0f32; 10];
            let mut arena = vec![0u8; f32_model.arena_bytes()];
            f32_model.forward(input, &mut arena, &mut plain).unwrap();
            assert_eq!(logits.f32, plain);
            let mut codes = vec![0i8; int8_model.input_len()];
            int8_model.quantize_input(input, &mut codes).unwrap();
            let mut q = vec![0i8; 10];
            let mut arena = vec![0u8; int8_model.arena_bytes()];
            int8_model.forward_int8(&codes, &mut arena, &mut q).unwrap();
            let mut deq = vec![0.0f32; 10];
            int8_model.dequantize_logits(&q, &mut deq).unwrap();
            assert_eq!(logits.int8, deq);
            let [[a], [b]] = logits.top::<1>();
            agreements += usize::from(a == b);
        }
        assert_eq!(c.samples(), inputs.len());
        assert_eq!(c.top1_agreement(), agreements as f64 / inputs.len() as f64);
        for l in c.layers() {
            // Quantization loses something, but far less than the signal.
            assert!(l.noise > 0.0 && l.signal > 0.0, "{}", l.name);
            assert!(l.sqnr_db() > 10.0, "{}: {} dB", l.name, l.sqnr_db());
            assert!(l.max_err > 0.0 && l.max_err < l.max_ref, "{}", l.name);
        }
    }

    #[test]
    fn mismatched_models_are_refused() {
        let m = quantized_micro(3);
        let (f32_model, int8_model) = (m.f32_blob.model().unwrap(), m.int8_blob.model().unwrap());
        let e = Comparison::new(&int8_model, &int8_model).err().unwrap();
        assert!(e.to_string().contains("is not an f32 model"), "{e}");
        let e = Comparison::new(&f32_model, &f32_model).err().unwrap();
        assert!(e.to_string().contains("is not an int8 model"), "{e}");
    }

    #[test]
    fn sqnr_and_steps() {
        let e = LayerError {
            index: 0,
            name: "x".into(),
            shape: Shape::new(1, 1, 1),
            signal: 100.0,
            noise: 1.0,
            max_ref: 10.0,
            max_err: 0.5,
            scale: 0.25,
        };
        assert!((e.sqnr_db() - 20.0).abs() < 1e-12);
        assert_eq!(e.max_err_steps(), 2.0);
        let exact = LayerError { noise: 0.0, ..e };
        assert!(exact.sqnr_db() > 300.0);
    }
}
