//! Requantization: one rounding, half up (`docs/int8-spec.md`).

/// `(acc * m + 2^(r-1)) >> r` in i64, for `r` in [1, 62] (anything else gives 0).
#[inline]
pub const fn requantize(acc: i32, multiplier: i32, shift: i32) -> i64 {
    if shift < 1 || shift > 62 {
        return 0;
    }
    let product = acc as i64 * multiplier as i64;
    (product + (1i64 << (shift - 1))) >> shift
}

/// Clamps to the int8 range.
#[inline]
pub const fn saturate(v: i64) -> i8 {
    if v < i8::MIN as i64 {
        i8::MIN
    } else if v > i8::MAX as i64 {
        i8::MAX
    } else {
        v as i8
    }
}

/// The output code of an accumulator: `clamp(zp_out + requantize(acc), -128, 127)`.
#[inline]
pub const fn output_code(acc: i32, multiplier: i32, shift: i32, zp_out: i32) -> i8 {
    saturate(zp_out as i64 + requantize(acc, multiplier, shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_up_once() {
        // m = 2^30, r = 31: multiply by one half.
        let half = 1 << 30;
        assert_eq!(requantize(3, half, 31), 2); // 1.5 -> 2
        assert_eq!(requantize(-3, half, 31), -1); // -1.5 -> -1 (half up, not away from zero)
        assert_eq!(requantize(5, half, 31), 3); // 2.5 -> 3
        assert_eq!(requantize(i32::MAX, i32::MAX, 62), 1); // no overflow at the extremes
        assert_eq!(
            requantize(i32::MIN, i32::MAX, 1),
            (i32::MIN as i64 * i32::MAX as i64 + 1) >> 1
        );
    }

    #[test]
    fn saturates() {
        assert_eq!(output_code(1000, 1 << 30, 31, 0), 127);
        assert_eq!(output_code(-1000, 1 << 30, 31, 0), -128);
        assert_eq!(output_code(0, 1 << 30, 31, -128), -128);
    }
}
