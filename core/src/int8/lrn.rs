//! Integer-only Local Response Normalization (`docs/int8-spec.md`): the exact integer sum of
//! squares indexes a table of the normalization factor that the quantizer computed.

use super::requant::saturate;
use super::ZeroPoints;
use crate::arch::{Layer, LrnSpec, Shape, MAX_LRN_SIZE};
use crate::error::Error;
use crate::layers::{expect_len, output_shape};

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

/// Largest sum of squares for an LRN of size `n`: `n * 255^2`.
pub const fn lrn_max_sum(size: u32) -> u32 {
    size * 255 * 255
}

/// The interpolated table value for sum `s`, or `None` if the table is too short.
fn lookup(table: &[i32], s: u32) -> Option<i64> {
    let (i, f, sh) = lrn_table_index(s);
    let g0 = *table.get(i as usize)? as i64;
    if sh == 0 {
        return Some(g0);
    }
    let g1 = *table.get(i as usize + 1)? as i64;
    Some(g0 + (((g1 - g0) * f as i64 + (1i64 << (sh - 1))) >> sh))
}

/// Normalizes `values` (`[C, H, W]` codes) in place with the layer's table and shift `q`.
pub fn lrn_in_place(
    values: &mut [i8],
    shape: Shape,
    spec: &LrnSpec,
    table: &[i32],
    q: u32,
    zero_points: ZeroPoints,
) -> Result<(), Error> {
    output_shape(&Layer::Lrn(*spec), shape)?;
    expect_len("lrn input", shape.len(), values.len())?;
    let needed = lrn_table_len(lrn_max_sum(spec.size));
    if table.len() < needed {
        return Err(Error::BufferTooSmall {
            what: "LRN table",
            needed,
            found: table.len(),
        });
    }
    if q > 62 {
        return Err(Error::BadField {
            field: "LRN table shift",
            found: q,
        });
    }
    // Validated odd and at most MAX_LRN_SIZE; the clamp lets the optimizer see that every
    // `% n` is nonzero and every ring index in bounds.
    let n = (spec.size as usize).clamp(1, MAX_LRN_SIZE as usize);
    let half = n / 2;
    let channels = shape.c;
    let plane = shape.plane();
    let zp_in = zero_points.input;
    let round = if q == 0 { 0 } else { 1i64 << (q - 1) };
    let mut ring = [0i32; MAX_LRN_SIZE as usize];
    for pixel in 0..plane {
        let at = |c: usize| c * plane + pixel;
        let d = |v: Option<&i8>| v.map_or(0, |&v| v as i32 - zp_in);
        for c in 0..half.min(channels) {
            ring[c % n] = d(values.get(at(c)));
        }
        for c in 0..channels {
            let ahead = c + half;
            if ahead < channels {
                ring[ahead % n] = d(values.get(at(ahead)));
            }
            let last = (c + half).min(channels - 1);
            let mut sum = 0u32;
            for j in c.saturating_sub(half)..=last {
                let v = ring[j % n];
                sum += (v * v) as u32;
            }
            let g = lookup(table, sum).unwrap_or(0);
            let x = ring[c % n] as i64;
            if let Some(out) = values.get_mut(at(c)) {
                *out = saturate(zero_points.output as i64 + ((x * g + round) >> q));
            }
        }
    }
    Ok(())
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
