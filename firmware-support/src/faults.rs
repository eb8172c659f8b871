//! What a board firmware does when it cannot go on: log the panic or the fault's address
//! through `defmt` and leave QEMU (or the debugger) with exit code 1, so that a failure can
//! never look like a pass.

/// Defines the firmware's `#[panic_handler]` and `HardFault` handler (in the binary crate:
/// a library cannot know whether its user brings its own, as the README's example does).
/// The crate invoking it depends on `cortex-m`, `cortex-m-rt`, `cortex-m-semihosting` and
/// `defmt`.
#[macro_export]
macro_rules! exit_on_faults {
    () => {
        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo) -> ! {
            defmt::error!("PANIC {}", defmt::Display2Format(info));
            cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
            loop {
                cortex_m::asm::wfi();
            }
        }

        #[cortex_m_rt::exception]
        unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
            defmt::error!("HARDFAULT at pc={=u32:#010x}", frame.pc());
            cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
            loop {
                cortex_m::asm::wfi();
            }
        }
    };
}

/// The class with the largest int8 logit, the lowest index on ties (as the host's
/// `top_k` ranks f32 logits).
pub fn argmax_i8(logits: &[i8]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if logits.get(best).is_some_and(|&b| v > b) {
            best = i;
        }
    }
    best
}
