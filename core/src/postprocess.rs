//! Softmax and top-k over logits.

use crate::error::Error;
use crate::geometry::expect_len;

/// `probs[i] = exp(x[i] - max) / sum_j exp(x[j] - max)`, with `libm::expf` and the sum taken
/// in ascending `j` from 0.0, so it is reproducible across targets.
pub fn softmax(logits: &[f32], probs: &mut [f32]) -> Result<(), Error> {
    expect_len("softmax output", logits.len(), probs.len())?;
    let max = logits
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    let mut sum = 0.0f32;
    for (p, &x) in probs.iter_mut().zip(logits) {
        *p = libm::expf(x - max);
        sum += *p;
    }
    for p in probs.iter_mut() {
        *p /= sum;
    }
    Ok(())
}

/// Fills `indices` with the classes of the `indices.len()` highest scores, best first; ties
/// keep the lower class first and NaN ranks below every number. Returns how many were
/// written (fewer when there are fewer scores).
pub fn top_k(scores: &[f32], indices: &mut [usize]) -> usize {
    let k = indices.len().min(scores.len());
    let better = |a: usize, b: usize| -> bool {
        match (scores.get(a), scores.get(b)) {
            (Some(&x), Some(&y)) => (x > y || (y.is_nan() && !x.is_nan())) || (x == y && a < b),
            _ => false,
        }
    };
    let mut filled = 0;
    for i in 0..scores.len() {
        // Insert i into the sorted prefix if it beats the last kept entry.
        let mut pos = filled;
        while pos > 0 && indices.get(pos - 1).is_some_and(|&j| better(i, j)) {
            pos -= 1;
        }
        if pos >= k {
            continue;
        }
        // Shift [pos, end) one slot right (dropping the last kept entry when full), put i at pos.
        let end = if filled < k { filled } else { k - 1 };
        if let Some(window) = indices.get_mut(pos..=end).filter(|w| !w.is_empty()) {
            window.rotate_right(1);
            if let Some(first) = window.first_mut() {
                *first = i;
            }
        }
        if filled < k {
            filled += 1;
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_is_stable() -> Result<(), crate::Error> {
        let mut p = [0.0; 3];
        softmax(&[1000.0, 1000.0, 0.0], &mut p)?;
        assert_eq!(p[0], 0.5);
        assert_eq!(p[1], 0.5);
        assert_eq!(p[2], 0.0);
        Ok(())
    }

    #[test]
    fn top_k_orders_and_breaks_ties_by_index() {
        let scores = [0.1, 0.9, f32::NAN, 0.9, 0.5];
        let mut idx = [0; 4];
        assert_eq!(top_k(&scores, &mut idx), 4);
        assert_eq!(idx, [1, 3, 4, 0]);
        let mut all = [0; 8];
        assert_eq!(top_k(&scores, &mut all), 5);
        assert_eq!(&all[..5], &[1, 3, 4, 0, 2]);
    }
}
