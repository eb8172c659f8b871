//! Random initializations: the paper's (§5) and He et al.'s.

use crate::spec::{LayerParams, ModelSpec};
use alexnet_core::{Arch, Layer};
use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// How a net's weights are drawn at the start of training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Initializer {
    /// N(0, 0.01) and the paper's biases of 1 (§5): [`paper_init`].
    Paper,
    /// He et al.'s normal (std sqrt(2 / fan_in)), biases 0: what deep nets without the
    /// paper's hand tuning need to start learning: [`kaiming_init`].
    Kaiming,
}

impl Initializer {
    /// A model of `arch` initialized this way; the same seed gives the same model.
    pub fn init(self, arch: &Arch<'_>, seed: u64) -> Result<ModelSpec> {
        match self {
            Initializer::Paper => paper_init(arch, seed),
            Initializer::Kaiming => kaiming_init(arch, seed),
        }
    }
}

/// Standard deviation of the paper's weight initialization.
pub const WEIGHT_STD: f32 = 0.01;

/// The paper's bias: 1 in conv2, conv4, conv5 and the hidden fully connected layers (fc6,
/// fc7), "to accelerate the early stages of learning by providing the ReLUs with positive
/// inputs"; 0 elsewhere.
pub fn paper_bias(arch: &Arch<'_>, layer: usize) -> f32 {
    let Some(name) = arch.param_layer_name(layer) else {
        return 0.0;
    };
    let last_linear = arch
        .layers
        .iter()
        .rposition(|l| matches!(l, Layer::Linear { .. }));
    match arch.layers.get(layer) {
        Some(Layer::Conv(_)) => f32::from(u8::from(matches!(name.number, 2 | 4 | 5))),
        Some(Layer::Linear { .. }) => f32::from(u8::from(Some(layer) != last_linear)),
        _ => 0.0,
    }
}

/// A model of architecture `arch` with weights drawn from N(0, 0.01) and the paper's biases,
/// the default preprocessing for the architecture and its labels. Same seed, same model.
pub fn paper_init(arch: &Arch<'_>, seed: u64) -> Result<ModelSpec> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, WEIGHT_STD)?;
    let mut params = Vec::with_capacity(arch.layers.len());
    for step in arch.walk() {
        let step = step.map_err(|e| anyhow::anyhow!("{}", alexnet_core::Error::Arch(e)))?;
        if !step.layer.has_params() {
            params.push(None);
            continue;
        }
        let n = step
            .layer
            .weight_len(step.input)
            .map_err(|p| anyhow::anyhow!("{p}"))?;
        let weight: Vec<f32> = (0..n).map(|_| normal.sample(&mut rng)).collect();
        let bias = vec![paper_bias(arch, step.index); step.layer.bias_len()];
        params.push(Some(LayerParams { weight, bias }));
    }
    Ok(ModelSpec::with_defaults(arch, params))
}

/// He-normal weights (std sqrt(2 / fan_in)), zero biases; preprocessing and labels as in
/// [`paper_init`].
pub fn kaiming_init(arch: &Arch<'_>, seed: u64) -> Result<ModelSpec> {
    let mut spec = paper_init(arch, seed)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for p in spec.params.iter_mut().flatten() {
        let fan_in = (p.weight.len() / p.bias.len().max(1)).max(1);
        let normal = Normal::new(0.0f32, (2.0 / fan_in as f32).sqrt())?;
        for w in &mut p.weight {
            *w = normal.sample(&mut rng);
        }
        p.bias.iter_mut().for_each(|b| *b = 0.0);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alexnet_core::builtin::{MICRO, PAPER};

    #[test]
    fn biases_follow_the_paper() {
        let ones: Vec<String> = (0..PAPER.layers.len())
            .filter(|&i| paper_bias(&PAPER, i) == 1.0)
            .filter_map(|i| PAPER.param_layer_name(i).map(|n| n.to_string()))
            .collect();
        assert_eq!(ones, ["conv2", "conv4", "conv5", "fc6", "fc7"]);
    }

    #[test]
    fn same_seed_same_weights_and_std_is_right() {
        let a = paper_init(&MICRO, 7).unwrap();
        let b = paper_init(&MICRO, 7).unwrap();
        let c = paper_init(&MICRO, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let w: Vec<f32> = a
            .params
            .iter()
            .flatten()
            .flat_map(|p| p.weight.iter().copied())
            .collect();
        let mean = w.iter().map(|&x| x as f64).sum::<f64>() / w.len() as f64;
        let var = w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / w.len() as f64;
        assert!(mean.abs() < 1e-4, "mean {mean}");
        assert!((var.sqrt() - 0.01).abs() < 1e-4, "std {}", var.sqrt());
    }

    #[test]
    fn kaiming_init_has_he_scale() {
        let spec = Initializer::Kaiming.init(&MICRO, 1).unwrap();
        let fc6 = spec.params[16].as_ref().expect("fc6");
        let fan_in = fc6.weight.len() / fc6.bias.len();
        let var = fc6.weight.iter().map(|w| w * w).sum::<f32>() / fc6.weight.len() as f32;
        let expected = 2.0 / fan_in as f32;
        assert!((var / expected - 1.0).abs() < 0.02, "{var} vs {expected}");
        assert!(fc6.bias.iter().all(|&b| b == 0.0));
        assert_eq!(spec, kaiming_init(&MICRO, 1).unwrap());
        assert_eq!(
            Initializer::Paper.init(&MICRO, 1).unwrap(),
            paper_init(&MICRO, 1).unwrap()
        );
    }
}
