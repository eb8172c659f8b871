//! Rectified linear unit.

/// `x < 0 ? 0 : x` in place. NaN passes through, so a broken model stays visibly broken.
pub fn relu_in_place(values: &mut [f32]) {
    for v in values {
        if *v < 0.0 {
            *v = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clamps_negatives_only() {
        let mut v = [-1.0, 0.0, 2.5, f32::NEG_INFINITY, f32::NAN];
        super::relu_in_place(&mut v);
        assert_eq!(&v[..4], &[0.0, 0.0, 2.5, 0.0]);
        assert!(v[4].is_nan());
    }
}
