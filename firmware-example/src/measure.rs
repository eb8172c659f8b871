//! Measuring on the device: instructions through SysTick (QEMU runs with `-icount`, so its
//! clock counts instructions), flash and RAM from the linker's symbols, and the stack's peak
//! by painting it.

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

extern "C" {
    static __sidata: u8;
    static __sdata: u8;
    static __edata: u8;
    static __sheap: u8;
    static _stack_start: u8;
}

/// Bytes of flash and of static RAM the image uses.
pub struct Memory {
    pub flash: u32,
    pub ram_static: u32,
}

pub fn memory() -> Memory {
    // Only the addresses of the linker's symbols are taken, never their contents.
    let sidata = core::ptr::addr_of!(__sidata) as u32;
    let data = core::ptr::addr_of!(__edata) as u32 - core::ptr::addr_of!(__sdata) as u32;
    let sheap = core::ptr::addr_of!(__sheap) as u32;
    Memory {
        flash: sidata + data,
        ram_static: sheap - 0x2000_0000,
    }
}

const PAINT: u32 = 0xC0DE_C0DE;

fn stack_bounds() -> (u32, u32) {
    (
        core::ptr::addr_of!(__sheap) as u32,
        core::ptr::addr_of!(_stack_start) as u32,
    )
}

/// Fills the free stack below the current frame with a pattern.
pub fn paint_stack() {
    let (low, _) = stack_bounds();
    let sp = cortex_m::register::msp::read();
    let mut p = (low + 3) & !3;
    while p + 512 < sp {
        // SAFETY: [__sheap, sp - 512) is unused stack; nothing lives there yet.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Deepest stack use so far: from the top down to the lowest word the pattern no longer holds.
pub fn stack_peak() -> u32 {
    let (low, top) = stack_bounds();
    let mut p = (low + 3) & !3;
    // SAFETY: reads of the painted region.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p
}
