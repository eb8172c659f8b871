//! SysTick as a 64-bit tick counter. QEMU runs the firmware with `-icount`, so its clock
//! counts instructions; [`InstructionClock::calibrate`] measures the ratio on a loop of known
//! length.

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;

const RELOAD: u32 = 0x00ff_ffff;
/// Turns of the calibration loop.
pub const CALIBRATION_TURNS: u32 = 4_000_000;
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// SysTick as a 64-bit tick counter.
pub struct InstructionClock;

impl InstructionClock {
    /// Starts SysTick on the core clock, counting down from 2^24 - 1 with an interrupt per wrap.
    pub fn start() -> Self {
        if let Some(mut p) = cortex_m::Peripherals::take() {
            p.SYST.set_clock_source(SystClkSource::Core);
            p.SYST.set_reload(RELOAD);
            p.SYST.clear_current();
            p.SYST.enable_interrupt();
            p.SYST.enable_counter();
            // After clearing, the counter reads 0 until its first reload: wait for it, or the
            // first reading would look like a full period.
            while SYST::get_current() == 0 {}
        }
        InstructionClock
    }

    /// Ticks since start. QEMU takes interrupts only between translated blocks, so the
    /// counter can wrap before the SysTick handler has counted it: a pending SysTick with a
    /// freshly reloaded counter is a wrap not yet counted.
    pub fn now(&self) -> u64 {
        loop {
            let w = WRAPS.load(Ordering::Relaxed);
            let v = SYST::get_current();
            let pending = SCB::is_pendst_pending();
            if w != WRAPS.load(Ordering::Relaxed) {
                continue;
            }
            let wraps = w as u64 + u64::from(pending && v > RELOAD / 2);
            return wraps * (RELOAD as u64 + 1) + (RELOAD - v) as u64;
        }
    }

    /// Ticks a loop of known length takes: `2 * CALIBRATION_TURNS` instructions (`subs`, `bne`).
    pub fn calibrate(&mut self) -> u64 {
        const TURNS: u32 = CALIBRATION_TURNS;
        let t0 = self.now();
        let mut n = TURNS;
        // SAFETY: a register-only countdown loop; it touches no memory.
        unsafe {
            core::arch::asm!("1:", "subs {0}, {0}, #1", "bne 1b", inout(reg) n, options(nomem, nostack));
        }
        let _ = n;
        self.now() - t0
    }

    /// Ticks between `t0` and now.
    pub fn since(&self, t0: u64) -> u64 {
        self.now() - t0
    }
}
