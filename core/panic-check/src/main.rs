//! Links every public entry point of `alexnet-core` that firmware calls, and every function
//! of its C API (`alexnet-core-ffi`), on inputs the optimizer cannot see (a blob, an input
//! and an arena of unknown contents and sizes, pointers it cannot follow), with
//! a panic handler that calls a function that does not exist. If any panic path survives
//! optimization, the linker needs that function and fails, naming it; if the binary links,
//! no panic is reachable from these entry points on any input. (`cargo xtask test` builds it
//! with and without the `dsp` feature.)

#![no_std]
#![no_main]

use alexnet_core::postprocess::{softmax, top_k};
use alexnet_core::RunOptions;
use alexnet_core::{Model, Preprocess, Shape};
use core::hint::black_box;
use cortex_m_rt::entry;

/// Memory whose contents and used length the optimizer cannot know.
static mut BLOB: [u8; 1 << 16] = [0; 1 << 16];
static mut ARENA: [u8; 1 << 16] = [0; 1 << 16];
static mut FLOATS: [f32; 4096] = [0.0; 4096];
static mut CODES: [i8; 4096] = [0; 4096];
static mut PIXELS: [u8; 4096] = [0; 4096];

#[entry]
fn main() -> ! {
    // SAFETY: the only references to these statics, taken once, single-threaded.
    #[allow(static_mut_refs)]
    let (blob, arena, floats, codes, pixels) =
        unsafe { (&mut BLOB, &mut ARENA, &mut FLOATS, &mut CODES, &mut PIXELS) };
    let blob = blob.get(..black_box(blob.len())).unwrap_or(&[]);
    let blob = black_box(blob);
    let arena = black_box(&mut arena[..]);
    let Some((input, out)) = black_box(&mut floats[..]).split_at_mut_checked(black_box(2048))
    else {
        spin()
    };
    let Some((qin, qout)) = black_box(&mut codes[..]).split_at_mut_checked(black_box(2048)) else {
        spin()
    };
    let mut best = [0usize; 5];
    if let Ok(model) = Model::parse(blob) {
        let _ = black_box(model.arena_bytes());
        let _ = black_box(model.forward(input, arena, out));
        let _ = black_box(model.forward_int8(qin, arena, qout));
        let _ = black_box(model.quantize_input(input, qin));
        let _ = black_box(model.dequantize_logits(qout, out));
        let _ = black_box(model.run(
            input,
            arena,
            out,
            RunOptions::new().observe(&mut |_, _, _| {}),
        ));
        let _ = black_box(model.run(
            qin,
            arena,
            qout,
            RunOptions::new().observe(&mut |_, _, _| {}),
        ));
        let shape = Shape::new(black_box(3), black_box(16), black_box(16));
        let prep: &Preprocess<'_> = black_box(model.preprocess());
        let _ = black_box(prep.apply(pixels, shape, input));
    }
    let _ = black_box(softmax(input, out));
    let _ = black_box(top_k(out, &mut best));
    c_api();
    spin()
}

/// Every function of the C API, on pointers and lengths the optimizer cannot know (NULL,
/// misaligned, overlapping or fine: whatever `black_box` might hold).
fn c_api() {
    use alexnet_core_ffi::*;
    static mut HANDLE: alexnet_model_t = alexnet_model_t {
        opaque: [0; ALEXNET_MODEL_WORDS],
    };
    static mut INFO: [u8; 256] = [0; 256];
    // SAFETY: the only references to these statics, taken once, single-threaded.
    #[allow(static_mut_refs)]
    let (blob, arena, floats, codes, pixels, handle, info) = unsafe {
        (
            BLOB.as_mut_ptr(),
            ARENA.as_mut_ptr(),
            FLOATS.as_mut_ptr(),
            CODES.as_mut_ptr(),
            PIXELS.as_mut_ptr(),
            &raw mut HANDLE,
            INFO.as_mut_ptr().cast::<alexnet_model_info_t>(),
        )
    };
    let n = || black_box(0usize);
    let f = || black_box(floats);
    let c = || black_box(codes);
    let h = || black_box(handle);
    // SAFETY: only linked, never run (see `spin`): the point is the code these calls pull in.
    unsafe {
        let _ = black_box(alexnet_model_parse(black_box(blob), n(), h()));
        let _ = black_box(alexnet_model_info(h(), black_box(info)));
        let _ = black_box(alexnet_model_arena_bytes(h()));
        let _ = black_box(alexnet_forward_f32(
            h(),
            f(),
            n(),
            black_box(arena),
            n(),
            f(),
            n(),
        ));
        let _ = black_box(alexnet_forward_int8(
            h(),
            c(),
            n(),
            black_box(arena),
            n(),
            c(),
            n(),
        ));
        let _ = black_box(alexnet_preprocess(h(), black_box(pixels), n(), f(), n()));
        let _ = black_box(alexnet_quantize_input(h(), f(), n(), c(), n()));
        let _ = black_box(alexnet_dequantize_logits(h(), c(), n(), f(), n()));
        let _ = black_box(alexnet_softmax(f(), f(), n()));
        let indices = black_box(floats.cast::<usize>());
        let _ = black_box(alexnet_top_k(f(), n(), indices, n(), indices));
        let _ = black_box(alexnet_class_label(h(), n(), black_box(pixels).cast(), n()));
        let _ = black_box(alexnet_status_message(black_box(0)));
        let _ = black_box(alexnet_version());
    }
}

/// Where the program ends: it only has to link, never to run.
fn spin() -> ! {
    loop {
        black_box(());
    }
}

#[cfg(feature = "locate")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // `--features locate`: links, so that the disassembly shows who calls the panics.
    spin()
}

#[cfg(not(feature = "locate"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    extern "Rust" {
        /// Deliberately undefined: the link fails if a panic path reaches it.
        fn alexnet_core_has_a_reachable_panic() -> !;
    }
    // SAFETY: never called when the proof holds (the binary would not link otherwise).
    unsafe { alexnet_core_has_a_reachable_panic() }
}
