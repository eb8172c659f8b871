//! The int8 max pooling by rows (written for microcontrollers, fast on any core): the
//! definition's maxima
//! ([`max_pool`](crate::kernels::reference::int8::max_pool)), computed separably. For each
//! output row, the column-wise maximum of its `window` input rows goes to a row buffer, then
//! each output takes the maximum of its `window` columns of that buffer. The maximum of
//! integers does not depend on the order in which they are compared, so the codes are
//! bit-identical (the kernel suite compares them); each input value is loaded about once per
//! output row instead of once per window that holds it, and there is no iterator chain per
//! window. (The f32 max pool keeps the definition: with `-0.0` and `0.0` the scan order decides
//! which zero stays.)

use super::super::reference::int8 as definition;
use crate::error::Error;
use crate::geometry::PoolGeometry;

/// Widest input row the row buffer (on the stack) holds; wider planes run the definition.
/// The widest of the built-in nets is 55 (the paper net's conv1).
pub const MAX_POOL_ROW: usize = 512;

/// Max pooling of int8 codes. `Ok(false)`: the rows are wider than [`MAX_POOL_ROW`] and the
/// definition ran. Always inlined, so that a kernel set compiles it with its own target
/// features (the x86-64 set with AVX2).
#[inline(always)]
pub fn max_pool_int8(g: &PoolGeometry, input: &[i8], output: &mut [i8]) -> Result<bool, Error> {
    max_pool_int8_with(g, input, output, fold_rows)
}

/// [`max_pool_int8`] with the column pass's step: `fold(columns, a, b)` must set
/// `columns[x] = max(columns[x], a[x], b[x])` over the shortest of them (`b`: the window's
/// next row, if any), as [`fold_rows`] does.
#[inline(always)]
pub fn max_pool_int8_with(
    g: &PoolGeometry,
    input: &[i8],
    output: &mut [i8],
    fold: impl Fn(&mut [i8], &[i8], Option<&[i8]>),
) -> Result<bool, Error> {
    g.check(input.len(), output.len())?;
    let (in_w, out_w) = (g.in_w().get(), g.out_w().get());
    if in_w > MAX_POOL_ROW {
        definition::max_pool(g, input, output)?;
        return Ok(false);
    }
    let (win, s) = (g.window().get(), g.stride().get());
    let mut buffer = [0i8; MAX_POOL_ROW];
    let columns = buffer.get_mut(..in_w).unwrap_or(&mut []);
    let planes = input
        .chunks_exact(g.in_plane().get())
        .zip(output.chunks_exact_mut(g.out_plane().get()));
    for (in_plane, out_plane) in planes {
        for (oy, out_row) in out_plane.chunks_exact_mut(out_w).enumerate() {
            let mut rows = in_plane.chunks_exact(in_w).skip(oy * s).take(win);
            // `columns[x]` = the maximum of the window's rows at `x`: the first row copied,
            // then the others two at a time, one pass over the buffer per pair.
            let Some(first) = rows.next() else {
                continue;
            };
            columns.iter_mut().zip(first).for_each(|(c, &a)| *c = a);
            while let Some(a) = rows.next() {
                fold(columns, a, rows.next());
            }
            row_maxima(columns, win, s, out_row);
        }
    }
    Ok(true)
}

/// `columns[x] = max(columns[x], a[x], b[x])`, one byte at a time (compilers vectorize it).
#[inline(always)]
pub fn fold_rows(columns: &mut [i8], a: &[i8], b: Option<&[i8]>) {
    match b {
        Some(b) => {
            for ((c, &x), &y) in columns.iter_mut().zip(a).zip(b) {
                *c = (*c).max(x).max(y);
            }
        }
        None => {
            for (c, &x) in columns.iter_mut().zip(a) {
                *c = (*c).max(x);
            }
        }
    }
}

/// `out[ox]` = the maximum of `columns[ox * s..ox * s + win]`.
#[inline(always)]
fn row_maxima(columns: &[i8], win: usize, s: usize, out: &mut [i8]) {
    for (ox, q) in out.iter_mut().enumerate() {
        let x = ox * s;
        *q = match columns.get(x..x + win) {
            Some(&[a, b, c]) => a.max(b).max(c),
            Some(window) => window.iter().copied().fold(i8::MIN, i8::max),
            None => continue,
        };
    }
}
