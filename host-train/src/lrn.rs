//! Local Response Normalization from tensor ops (tch has no binding for it).

use alexnet_core::arch::LrnSpec;
use tch::Tensor;

/// `x / (k + alpha' * S)^beta` over `[N, C, H, W]`, `S` the sum of squares over the `n`
/// channels around each one, clipped at the edges (zero padding), `alpha'` from
/// [`LrnSpec::alpha_effective`] (so both the paper's and Caffe/PyTorch's conventions).
pub fn lrn(x: &Tensor, spec: &LrnSpec) -> Tensor {
    let n = spec.size as i64;
    let half = n / 2;
    let channels = x.size()[1];
    let squares = (x * x).constant_pad_nd([0, 0, 0, 0, half, half]);
    // A copy: the in-place sums below must not write into `squares`, which `narrow` views.
    let mut sum = squares.narrow(1, 0, channels).copy();
    for j in 1..n {
        sum += squares.narrow(1, j, channels);
    }
    let alpha = spec.alpha_effective() as f64;
    let denominator = (sum * alpha + spec.k as f64).pow_tensor_scalar(spec.beta as f64);
    x / denominator
}
