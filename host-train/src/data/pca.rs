//! The paper's colour augmentation (section 4.1): PCA on the RGB values of the training
//! pixels, then per image and per use add `sum_k alpha_k * lambda_k * p_k` to every pixel,
//! `alpha_k ~ N(0, 0.1)`. It models that object identity does not change with the
//! intensity and colour of the illumination.

use super::ImageSet;
use anyhow::{ensure, Result};

/// Eigen decomposition of the 3x3 covariance of the (scaled) RGB pixel values.
#[derive(Clone, Copy, Debug)]
pub struct Pca {
    /// Variances along the principal axes, largest first.
    pub eigenvalues: [f32; 3],
    /// `eigenvectors[k]` is the k-th unit eigenvector (RGB components).
    pub eigenvectors: [[f32; 3]; 3],
}

impl Pca {
    /// Covariance of the RGB values (times `pixel_scale`) over up to `max_images` images
    /// spread evenly over the set, and its eigen decomposition. Errors unless the set is a
    /// non-empty 3-channel set.
    pub fn from_set(set: &ImageSet, pixel_scale: f32, max_images: usize) -> Result<Pca> {
        ensure!(
            set.channels == 3,
            "PCA colour noise needs RGB images, the set has {} channel(s)",
            set.channels
        );
        ensure!(!set.is_empty(), "PCA colour noise needs at least one image");
        ensure!(max_images > 0, "PCA needs max_images > 0");
        set.validate()?;
        let n = set.len();
        let m = max_images.min(n);
        let plane = set.size * set.size;
        // Integer sums are exact; one image at a time in u64 cannot overflow.
        let mut sum = [0f64; 3];
        let mut prod = [[0f64; 3]; 3];
        let mut count = 0f64;
        for j in 0..m {
            // Evenly spread: image floor(j * n / m).
            let i = j * n / m;
            let img = set.image(i).unwrap_or(&[]);
            let (r, rest) = img.split_at(plane.min(img.len()));
            let (g, b) = rest.split_at(plane.min(rest.len()));
            let mut s = [0u64; 3];
            let mut p = [[0u64; 3]; 3];
            for ((&r, &g), &b) in r.iter().zip(g).zip(b) {
                let v = [r as u64, g as u64, b as u64];
                for c in 0..3 {
                    s[c] += v[c];
                    for d in c..3 {
                        p[c][d] += v[c] * v[d];
                    }
                }
            }
            for c in 0..3 {
                sum[c] += s[c] as f64;
                for d in c..3 {
                    prod[c][d] += p[c][d] as f64;
                }
            }
            count += r.len() as f64;
        }
        ensure!(count > 0.0, "PCA: the images hold no pixels");
        let scale = pixel_scale as f64;
        let mut cov = [[0f64; 3]; 3];
        for c in 0..3 {
            for d in c..3 {
                let v = (prod[c][d] / count - sum[c] / count * sum[d] / count) * scale * scale;
                cov[c][d] = v;
                cov[d][c] = v;
            }
        }
        Ok(Pca::from_covariance(cov))
    }

    /// The decomposition of a symmetric 3x3 covariance matrix (cyclic Jacobi rotations).
    pub fn from_covariance(cov: [[f64; 3]; 3]) -> Pca {
        let (values, vectors) = jacobi_eigen(cov);
        let mut order = [0usize, 1, 2];
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let mut pca = Pca {
            eigenvalues: [0.0; 3],
            eigenvectors: [[0.0; 3]; 3],
        };
        for (k, &o) in order.iter().enumerate() {
            pca.eigenvalues[k] = values[o].max(0.0) as f32;
            // Columns of the rotation are the eigenvectors.
            let v = [vectors[0][o], vectors[1][o], vectors[2][o]];
            let norm = v
                .iter()
                .map(|x| x * x)
                .sum::<f64>()
                .sqrt()
                .max(f64::MIN_POSITIVE);
            // A fixed sign (largest component positive) makes the result reproducible.
            let big = v
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(1.0);
            let sign = if big < 0.0 { -1.0 } else { 1.0 };
            pca.eigenvectors[k] = v.map(|x| (sign * x / norm) as f32);
        }
        pca
    }

    /// The value added to each channel of every pixel: `sum_k alpha_k * lambda_k * p_k`.
    pub fn offset(&self, alphas: [f32; 3]) -> [f32; 3] {
        let mut out = [0f32; 3];
        for (k, p) in self.eigenvectors.iter().enumerate() {
            let w = alphas[k] * self.eigenvalues[k];
            for c in 0..3 {
                out[c] += w * p[c];
            }
        }
        out
    }
}

/// Eigenvalues and eigenvectors (as columns) of a symmetric 3x3 matrix.
fn jacobi_eigen(mut a: [[f64; 3]; 3]) -> ([f64; 3], [[f64; 3]; 3]) {
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _sweep in 0..64 {
        let off = a[0][1].powi(2) + a[0][2].powi(2) + a[1][2].powi(2);
        let diag = a[0][0].powi(2) + a[1][1].powi(2) + a[2][2].powi(2);
        if off <= 1e-30 * diag.max(f64::MIN_POSITIVE) || off == 0.0 {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q].abs() < f64::MIN_POSITIVE {
                continue;
            }
            // Rotation angle that zeroes a[p][q] (Numerical Recipes' formulation).
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let t = if theta == 0.0 { 1.0 } else { t };
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            // a <- J^T a J with J the rotation in the (p, q) plane.
            for row in a.iter_mut() {
                let (akp, akq) = (row[p], row[q]);
                row[p] = c * akp - s * akq;
                row[q] = s * akp + c * akq;
            }
            let (rp, rq) = (a[p], a[q]);
            a[p] = std::array::from_fn(|k| c * rp[k] - s * rq[k]);
            a[q] = std::array::from_fn(|k| s * rp[k] + c * rq[k]);
            for row in v.iter_mut() {
                let vp = row[p];
                let vq = row[q];
                row[p] = c * vp - s * vq;
                row[q] = s * vp + c * vq;
            }
        }
    }
    ([a[0][0], a[1][1], a[2][2]], v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
        a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
    }

    #[test]
    fn decomposes_known_matrices() {
        let cov = [[4.0, 1.0, 0.5], [1.0, 3.0, 0.25], [0.5, 0.25, 2.0]];
        let pca = Pca::from_covariance(cov);
        assert!(pca.eigenvalues[0] >= pca.eigenvalues[1]);
        assert!(pca.eigenvalues[1] >= pca.eigenvalues[2]);
        let trace: f32 = pca.eigenvalues.iter().sum();
        assert!((trace - 9.0).abs() < 1e-5);
        for k in 0..3 {
            let p = pca.eigenvectors[k];
            // A p = lambda p.
            for r in 0..3 {
                let ap: f64 = (0..3).map(|c| cov[r][c] * p[c] as f64).sum();
                assert!((ap as f32 - pca.eigenvalues[k] * p[r]).abs() < 1e-5);
            }
        }
        // Diagonal and already-decomposed inputs.
        let pca = Pca::from_covariance([[1.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 3.0]]);
        assert_eq!(pca.eigenvalues, [5.0, 3.0, 1.0]);
        assert_eq!(pca.eigenvectors[0], [0.0, 1.0, 0.0]);
    }

    #[test]
    fn recovers_the_covariance_of_a_synthetic_set() {
        // Pixels = mean + L z with known principal axes: a rotation R and stds (30, 12, 4).
        let axes = {
            let a = [1.0f64, 1.0, 1.0];
            let b = [1.0f64, -1.0, 0.0];
            let c = [1.0f64, 1.0, -2.0];
            let n = |v: [f64; 3]| {
                let l = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
                v.map(|x| x / l)
            };
            [n(a), n(b), n(c)]
        };
        let stds = [30.0f64, 12.0, 4.0];
        let (n, size) = (40, 32);
        let plane = size * size;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut pixels = vec![0u8; n * 3 * plane];
        for i in 0..n {
            for p in 0..plane {
                let z: [f64; 3] = std::array::from_fn(|_| StandardNormal.sample(&mut rng));
                for c in 0..3 {
                    let v: f64 = 128.0 + (0..3).map(|k| axes[k][c] * stds[k] * z[k]).sum::<f64>();
                    pixels[(i * 3 + c) * plane + p] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        let set = ImageSet {
            channels: 3,
            size,
            pixels: pixels.into(),
            labels: vec![0; n],
            classes: vec!["x".into()],
        };
        // The exact covariance of the pixels actually drawn (rounding included).
        let scale = 1.0 / 255.0;
        let mut mean = [0f64; 3];
        let mut cov = [[0f64; 3]; 3];
        let count = (n * plane) as f64;
        for i in 0..n {
            for p in 0..plane {
                for (c, m) in mean.iter_mut().enumerate() {
                    *m += set.pixels[(i * 3 + c) * plane + p] as f64 * scale / count;
                }
            }
        }
        for i in 0..n {
            for p in 0..plane {
                let v: [f64; 3] = std::array::from_fn(|c| {
                    set.pixels[(i * 3 + c) * plane + p] as f64 * scale - mean[c]
                });
                for c in 0..3 {
                    for d in 0..3 {
                        cov[c][d] += v[c] * v[d] / count;
                    }
                }
            }
        }
        let pca = Pca::from_set(&set, scale as f32, 1000).unwrap();
        let exact = Pca::from_covariance(cov);
        for k in 0..3 {
            assert!(
                (pca.eigenvalues[k] - exact.eigenvalues[k]).abs() < 1e-3 * exact.eigenvalues[0],
                "{:?} vs {:?}",
                pca.eigenvalues,
                exact.eigenvalues
            );
            // And close to the generating model: variance std^2 (scaled).
            let model = (stds[k] * scale).powi(2) as f32;
            assert!((pca.eigenvalues[k] - model).abs() < 0.05 * model + 1e-5);
            // The principal axes are the generating ones (up to sign).
            let axis = axes[k].map(|x| x as f32);
            assert!(dot(pca.eigenvectors[k], axis).abs() > 0.99, "{pca:?}");
            for j in 0..3 {
                let d = dot(pca.eigenvectors[k], pca.eigenvectors[j]);
                let want = if j == k { 1.0 } else { 0.0 };
                assert!((d - want).abs() < 1e-5, "orthonormality {k} {j}: {d}");
            }
        }
        // The offset is the eigen-weighted sum.
        let off = pca.offset([1.0, 0.0, -2.0]);
        for (c, o) in off.iter().enumerate() {
            let want = pca.eigenvalues[0] * pca.eigenvectors[0][c]
                - 2.0 * pca.eigenvalues[2] * pca.eigenvectors[2][c];
            assert!((o - want).abs() < 1e-7);
        }
        assert_eq!(pca.offset([0.0; 3]), [0.0; 3]);
        // Subsampled: still close.
        let sub = Pca::from_set(&set, scale as f32, 7).unwrap();
        assert!((sub.eigenvalues[0] - pca.eigenvalues[0]).abs() < 0.1 * pca.eigenvalues[0]);
    }

    #[test]
    fn refuses_grey_and_empty_sets() {
        let grey = crate::data::testutil::pattern_set(2, 1, 4);
        assert!(Pca::from_set(&grey, 1.0, 10)
            .unwrap_err()
            .to_string()
            .contains("RGB"));
        let empty = crate::data::testutil::pattern_set(0, 3, 4);
        assert!(Pca::from_set(&empty, 1.0, 10).is_err());
        let rgb = crate::data::testutil::pattern_set(2, 3, 4);
        assert!(Pca::from_set(&rgb, 1.0, 0).is_err());
    }
}
