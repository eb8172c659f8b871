#![no_std]
#![no_main]

use alexnet_core::{builtin::MICRO, include_model, postprocess::top_k, Error, Model};
use cortex_m_rt::entry;

/// Known at compile time; any `&mut [u8]` of at least `model.arena_bytes()` bytes works.
const ARENA_BYTES: usize = MICRO.arena_bytes_f32();

#[entry]
fn main() -> ! {
    // Once, at start: the model, in flash (64-byte aligned) and validated in place (CRC,
    // descriptor, every tensor's shape), and the arena: `singleton!` hands out its
    // `&'static mut` the first time and `None` after, so it is taken here, not per image.
    let model = Model::parse(include_model!("../assets/micro-f32.blob"));
    let arena = cortex_m::singleton!(: [u8; ARENA_BYTES] = [0; ARENA_BYTES]);
    let (Ok(model), Some(arena)) = (model, arena) else {
        board::fail("no valid model, or no arena");
    };
    // Then every frame reuses both.
    let mut input = [0.0f32; 28 * 28];
    while let Some(pixels) = board::next_frame() {
        let class = model
            .preprocess()
            .apply(pixels, MICRO.input, &mut input)
            .and_then(|()| classify(&model, &input, arena));
        board::report(class);
    }
    board::done()
}

/// One inference: the f32 forward pass, then the best class.
fn classify(model: &Model, input: &[f32], arena: &mut [u8]) -> Result<usize, Error> {
    let mut logits = [0.0f32; 10];
    model.forward(input, arena, &mut logits)?;
    let mut best = [0usize; 1];
    top_k(&logits, &mut best);
    Ok(best[0])
}

// Everything above is the README's firmware snippet, verbatim (`cargo xtask test` checks it
// and runs this example under QEMU). Below: the `board` it leaves to the reader, here QEMU's
// MPS2-AN386 with the firmware example's test images as the frames.

#[path = "../src/images.rs"]
mod images;

mod board {
    use crate::images;
    use alexnet_core::Error;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use cortex_m_semihosting::debug;
    use defmt_semihosting as _;

    /// Frames handed out so far.
    static FRAMES: AtomicUsize = AtomicUsize::new(0);

    /// The next test image's pixels, `None` after the last.
    pub fn next_frame() -> Option<&'static [u8]> {
        let i = FRAMES.fetch_add(1, Ordering::Relaxed);
        images::embedded()?.image(i).map(|(_, pixels)| pixels)
    }

    /// Logs a frame's class; any error ends the run as a failure.
    pub fn report(class: Result<usize, Error>) {
        let frame = FRAMES.load(Ordering::Relaxed) - 1;
        match class {
            Ok(class) => defmt::println!("frame {=usize}: class {=usize}", frame, class),
            Err(e) => {
                defmt::error!("FAIL frame {=usize}: {}", frame, e);
                exit(debug::EXIT_FAILURE)
            }
        }
    }

    /// Success if every test image was classified.
    pub fn done() -> ! {
        let count = images::embedded().map_or(0, |set| set.count);
        if count > 0 && FRAMES.load(Ordering::Relaxed) == count + 1 {
            defmt::println!("DONE {=usize} frames", count);
            exit(debug::EXIT_SUCCESS)
        }
        fail("not every test image was classified")
    }

    pub fn fail(why: &str) -> ! {
        defmt::error!("FAIL {=str}", why);
        exit(debug::EXIT_FAILURE)
    }

    fn exit(code: debug::ExitStatus) -> ! {
        debug::exit(code);
        loop {
            cortex_m::asm::wfi();
        }
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        defmt::error!("PANIC {}", defmt::Display2Format(info));
        exit(debug::EXIT_FAILURE)
    }
}
