//! The int8 kernels whose assembly only the device runs, against the definitions, on the
//! device: random cases of the integer LRN (tables of every kind: walks whose steps stay
//! below 2^30, as `SMMLAR`'s form needs, and arbitrary ones; shifts across the three
//! arithmetic regimes), the int8 max pool and the int8 ReLU, each computed by
//! `kernels::native()` and by `kernels::Reference`, compared code for code. A real net's
//! LRN tables change by a fraction of a step from one entry to the next, so the network run
//! of `src/main.rs` hardly exercises the interpolation; this does.
//!
//! Logs `CHECK <kernel> cases=<n> mismatches=<m>` per kernel, then `DONE`; exits with 0 only
//! if every case matched (`tests/firmware.rs` runs it with and without `dsp`).
#![no_std]
#![no_main]

use alexnet_core::arch::{LrnConvention, LrnSpec, PoolSpec, Shape};
use alexnet_core::geometry::PoolGeometry;
use alexnet_core::int8::{lrn_max_sum, lrn_table_len, ZeroPoints};
use alexnet_core::kernels::{native, Kernels, LrnTable, Reference};
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use defmt_semihosting as _;

/// Cases per kernel.
const CASES: u32 = 400;
/// Largest tensor of a case (planes of up to 300 codes cross the LRN's 128-pixel blocks).
const MAX_VALUES: usize = 16 * 300;
/// Largest LRN size drawn (7): its table's length.
const MAX_TABLE: usize = lrn_table_len(lrn_max_sum(7));

/// xorshift32: deterministic, so a failure reproduces.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    /// In `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.next() % (hi - lo + 1)
    }
    fn code(&mut self) -> i8 {
        self.next() as i8
    }
}

#[entry]
fn main() -> ! {
    let kernels = native();
    defmt::println!("kernels: {=str}", kernels.name());
    let mut rng = Rng(0x2545_f491);
    let lrn = lrn_cases(kernels, &mut rng);
    let pool = pool_cases(kernels, &mut rng);
    let relu = relu_cases(kernels, &mut rng);
    for (name, mismatches) in [
        ("lrn_int8", lrn),
        ("max_pool_int8", pool),
        ("relu_int8", relu),
    ] {
        defmt::println!(
            "CHECK {=str} cases={=u32} mismatches={=u32}",
            name,
            CASES,
            mismatches
        );
    }
    let ok = lrn == 0 && pool == 0 && relu == 0;
    defmt::println!("DONE");
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

/// Random integer LRN cases; the number whose codes differ from the definition's.
fn lrn_cases(kernels: &dyn Kernels, rng: &mut Rng) -> u32 {
    let mut table = [0i32; MAX_TABLE];
    let mut input = [0i8; MAX_VALUES];
    let (mut own, mut reference) = ([0i8; MAX_VALUES], [0i8; MAX_VALUES]);
    let mut mismatches = 0;
    for case in 0..CASES {
        let size = 2 * rng.range(0, 3) + 1;
        let c = rng.range(1, 16) as usize;
        let plane = match rng.range(0, 2) {
            0 => rng.range(1, 6),
            1 => rng.range(40, 110),
            _ => rng.range(250, 300),
        } as usize;
        let q = rng.range(0, 40);
        let zp_in = rng.code() as i32;
        let zp_out = rng.code() as i32;
        let len = lrn_table_len(lrn_max_sum(size));
        // Two cases in three: a walk within 0..=2^q (capped to i32) whose steps reach an
        // eighth of it, below 2^30 (the kernels' 32-bit form, with interpolations that move
        // outputs by many codes up to q = 37 or so); otherwise any i32 entries (the 64-bit
        // form).
        if case % 3 != 2 {
            let cap = (1i64 << q).min(i32::MAX as i64);
            let reach = (cap / 8).clamp(1, (1 << 29) - 1) as u32;
            let mut g = rng.range(0, cap as u32) as i64;
            for t in table.iter_mut().take(len) {
                *t = g as i32;
                g = (g + rng.range(0, 2 * reach) as i64 - reach as i64).clamp(0, cap);
            }
        } else {
            for t in table.iter_mut().take(len) {
                *t = rng.next() as i32;
            }
        }
        let n = c * plane;
        for v in input.iter_mut().take(n) {
            // A third at the zero point, as after a ReLU.
            *v = if rng.range(0, 2) == 0 {
                zp_in as i8
            } else {
                rng.code()
            };
        }
        own[..n].copy_from_slice(&input[..n]);
        reference[..n].copy_from_slice(&input[..n]);
        let spec = LrnSpec {
            size,
            alpha: 1e-4,
            beta: 0.75,
            k: 2.0,
            convention: LrnConvention::Paper,
        };
        let lrn_table = LrnTable::new(&table[..len], q);
        let zps = ZeroPoints {
            input: zp_in,
            output: zp_out,
        };
        let shape = Shape::new(c, plane, 1);
        let a = kernels.lrn_int8(&mut own[..n], shape, &spec, lrn_table, zps);
        let b = Reference.lrn_int8(&mut reference[..n], shape, &spec, lrn_table, zps);
        if a.is_err() || b.is_err() || own[..n] != reference[..n] {
            mismatches += 1;
            defmt::error!(
                "lrn_int8 case {=u32}: size {=u32} c {=usize} plane {=usize} q {=u32} zp {=i32}/{=i32}",
                case,
                size,
                c,
                plane,
                q,
                zp_in,
                zp_out
            );
        }
    }
    mismatches
}

/// Random int8 max pool cases (rows of up to 110 codes, windows up to 3, strides up to 3).
fn pool_cases(kernels: &dyn Kernels, rng: &mut Rng) -> u32 {
    let mut input = [0i8; MAX_VALUES];
    let (mut own, mut reference) = ([0i8; MAX_VALUES], [0i8; MAX_VALUES]);
    let mut mismatches = 0;
    for case in 0..CASES {
        let window = rng.range(1, 3);
        let stride = rng.range(1, 3);
        let c = rng.range(1, 3) as usize;
        let h = rng.range(window, 5) as usize;
        let w = rng.range(window, 110) as usize;
        for v in input.iter_mut().take(c * h * w) {
            *v = rng.code();
        }
        let Ok(g) = PoolGeometry::new(&PoolSpec { window, stride }, Shape::new(c, h, w)) else {
            mismatches += 1;
            continue;
        };
        let out = g.output().len();
        let a = kernels.max_pool_int8(&g, &input[..c * h * w], &mut own[..out]);
        let b = Reference.max_pool_int8(&g, &input[..c * h * w], &mut reference[..out]);
        if a.is_err() || b.is_err() || own[..out] != reference[..out] {
            mismatches += 1;
            defmt::error!(
                "max_pool_int8 case {=u32}: window {=u32} stride {=u32} {=usize}x{=usize}x{=usize}",
                case,
                window,
                stride,
                c,
                h,
                w
            );
        }
    }
    mismatches
}

/// Random int8 ReLU cases (any length, any zero point).
fn relu_cases(kernels: &dyn Kernels, rng: &mut Rng) -> u32 {
    let (mut own, mut reference) = ([0i8; MAX_VALUES], [0i8; MAX_VALUES]);
    let mut mismatches = 0;
    for case in 0..CASES {
        let n = rng.range(1, 300) as usize;
        let zp = rng.code() as i32;
        for (a, b) in own.iter_mut().zip(reference.iter_mut()).take(n) {
            *a = rng.code();
            *b = *a;
        }
        kernels.relu_int8(&mut own[..n], zp);
        Reference.relu_int8(&mut reference[..n], zp);
        if own[..n] != reference[..n] {
            mismatches += 1;
            defmt::error!(
                "relu_int8 case {=u32}: {=usize} codes, zero point {=i32}",
                case,
                n,
                zp
            );
        }
    }
    mismatches
}

firmware_support::exit_on_faults!();
