//! Integer-only Local Response Normalization (`docs/int8-spec.md`): the exact integer sum of
//! squares indexes a table of the normalization factor that the quantizer computed.

use crate::arch::{Layer, LrnSpec, Shape, MAX_LRN_SIZE};
use crate::error::Error;
use crate::geometry::{expect_len, output_shape};
use crate::int8::requant::saturate;
use crate::int8::{lrn_max_sum, lrn_table_index, lrn_table_len, ZeroPoints};

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

/// Checks an int8 LRN call (shape, length, table length, shift) and returns its size `n`,
/// odd and at most [`MAX_LRN_SIZE`] (clamped, so that the optimizer sees every `% n` nonzero
/// and every ring index in bounds). Every int8 LRN kernel checks with this.
pub(crate) fn check(
    len: usize,
    shape: Shape,
    spec: &LrnSpec,
    table: &[i32],
    q: u32,
) -> Result<usize, Error> {
    output_shape(&Layer::Lrn(*spec), shape)?;
    expect_len("lrn input", shape.len(), len)?;
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
    Ok((spec.size as usize).clamp(1, MAX_LRN_SIZE as usize))
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
    // Clamped again here: the optimizer must see `n` in range where the `% n` and the ring
    // indices are (a call to `check` that is not inlined would hide it).
    let n = check(values.len(), shape, spec, table, q)?.clamp(1, MAX_LRN_SIZE as usize);
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
