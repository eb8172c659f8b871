//! Flash and static RAM in use, from the linker's symbols (cortex-m-rt's), and the stack's
//! peak, by painting the free stack at start.

extern "C" {
    static __vector_table: u8;
    static __sidata: u8;
    static __sdata: u8;
    static __edata: u8;
    static __sheap: u8;
    static _stack_start: u8;
}

/// Bytes of flash and of static RAM the image uses.
pub struct Memory {
    /// Code, read-only data and `.data`'s initial values.
    pub flash: u32,
    /// `.data` and `.bss`.
    pub ram_static: u32,
}

/// Flash from the vector table to the end of `.data`'s load image; RAM from the start of
/// `.data` (the first section in RAM) to the end of `.bss`.
pub fn memory() -> Memory {
    // Only the addresses of the linker's symbols are taken, never their contents.
    let flash_start = core::ptr::addr_of!(__vector_table) as u32;
    let sidata = core::ptr::addr_of!(__sidata) as u32;
    let sdata = core::ptr::addr_of!(__sdata) as u32;
    let data = core::ptr::addr_of!(__edata) as u32 - sdata;
    let sheap = core::ptr::addr_of!(__sheap) as u32;
    Memory {
        flash: sidata + data - flash_start,
        ram_static: sheap - sdata,
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
