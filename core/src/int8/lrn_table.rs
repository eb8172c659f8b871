//! The int8 LRN table's grid (`docs/int8-spec.md`): which sums of squares its entries stand
//! for, and how a sum finds its entry. The quantizer fills the table; the kernels read it.

/// Sums below this are table indices themselves.
pub const LRN_DIRECT: u32 = 64;
/// Grid points per octave above [`LRN_DIRECT`].
pub const LRN_STEPS: u32 = 32;

/// The sum of squares at table entry `i`.
pub const fn lrn_grid(i: u32) -> u64 {
    if i < LRN_DIRECT {
        i as u64
    } else {
        let octave = (i - LRN_DIRECT) / LRN_STEPS; // e - 6
        let j = (i - LRN_DIRECT) % LRN_STEPS;
        ((LRN_STEPS + j) as u64) << (octave + 1)
    }
}

/// `(i, f, sh)`: the entry at or below `s`, the offset from it and the octave's shift
/// (`f < 2^sh`; `sh = 0` and `f = 0` for direct entries).
pub const fn lrn_table_index(s: u32) -> (u32, u32, u32) {
    if s < LRN_DIRECT {
        return (s, 0, 0);
    }
    let e = 31 - s.leading_zeros(); // >= 6
    let sh = e - 5;
    let top = s >> sh; // in [32, 64)
    let i = LRN_DIRECT + LRN_STEPS * (e - 6) + (top - LRN_STEPS);
    (i, s - (top << sh), sh)
}

/// Entries a table needs to cover sums up to `max_sum` (the interpolation reads `i + 1`).
pub const fn lrn_table_len(max_sum: u32) -> usize {
    let (i, _, _) = lrn_table_index(max_sum);
    i as usize + 2
}

/// Whether every two neighbouring entries are less than 2^30 apart: then the kernels'
/// 32-bit form of the table's interpolation is exact (`kernels::blocked::int8_lrn`). Real
/// tables' entries change by a few percent from one grid point to the next.
pub fn lrn_steps_fit(table: &[i32]) -> bool {
    table
        .windows(2)
        .all(|w| (w[1] as i64 - w[0] as i64).abs() < 1 << 30)
}

/// Largest sum of squares for an LRN of size `n`: `n * 255^2`.
pub const fn lrn_max_sum(size: u32) -> u32 {
    size * 255 * 255
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_and_index_agree() {
        for s in 0..400_000u32 {
            let (i, f, sh) = lrn_table_index(s);
            assert_eq!(lrn_grid(i) + f as u64, s as u64, "s = {s}");
            assert!(f < (1 << sh) || sh == 0 && f == 0);
            assert!(lrn_grid(i + 1) > s as u64);
        }
        // The paper's n = 5 needs 457 entries.
        assert_eq!(lrn_table_len(lrn_max_sum(5)), 457);
    }
}
