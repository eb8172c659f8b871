//! The micro net's integer path on a Cortex-M3 (QEMU's `mps2-an385`): no FPU and no DSP
//! extension, so the core runs its generic integer kernels, and the same logits come out as
//! on the host. The pixels' preprocessing is f32 arithmetic (soft-float here); the forward
//! pass from the input codes on is integer only.
//!
//! For each test image it logs the logits and the instructions the inference took; then it
//! runs the first image layer by layer and logs each layer's instructions and output digest.
//! The log is the one-model format of `firmware-an524`, so the host compares it with the same
//! code (`tests/firmware_an385.rs`).
#![no_std]
#![no_main]

use alexnet_core::builtin::MICRO;
use alexnet_core::{include_model, Error, Model, Precision};
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use defmt_semihosting as _;
use firmware_support::clock::{InstructionClock, CALIBRATION_TURNS};
use firmware_support::images::Images;
use firmware_support::{faults, memory, profile};

/// The arena of the layer-by-layer run (every output whole), which also serves the fused
/// forward pass.
const ARENA_BYTES: usize = MICRO.observed_arena_bytes_int8();

fn blob() -> &'static [u8] {
    include_model!("../assets/micro-int8.blob")
}

static IMAGES: &[u8] = include_bytes!("../assets/images.bin");

#[entry]
fn main() -> ! {
    memory::paint_stack();
    let code = match run() {
        Ok(()) => debug::EXIT_SUCCESS,
        Err(e) => {
            defmt::error!("FAIL {}", e);
            debug::EXIT_FAILURE
        }
    };
    debug::exit(code);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Parses the blob and checks it against what this firmware was built for. Not inlined: the
/// parser's temporaries (10 KiB) would otherwise stay in `main`'s frame, under every
/// inference's stack.
#[inline(never)]
fn load() -> Result<Model<'static>, Error> {
    let model = Model::parse(blob())?;
    if model.arch() != MICRO {
        defmt::error!(
            "the blob holds architecture {=str}, this firmware is built for {=str}",
            model.arch().name,
            MICRO.name
        );
        return Err(Error::WrongLength {
            what: "architecture (layers)",
            expected: MICRO.layers.len(),
            found: model.layers().len(),
        });
    }
    if model.precision() != Precision::Int8 {
        return Err(Error::WrongPrecision {
            model: model.precision(),
            called: Precision::Int8,
        });
    }
    Ok(model)
}

fn run() -> Result<(), Error> {
    let mut clock = InstructionClock::start();
    let cal_ticks = clock.calibrate();
    let model = load()?;
    let mem = memory::memory();
    defmt::println!(
        "FW net={=str} precision=int8 kernels={=str} arena={=usize} flash={=u32} ram_static={=u32} cal_instructions={=u32} cal_ticks={=u64} blob={=usize} macs={=u64}",
        MICRO.name,
        alexnet_core::kernels::native().name(),
        ARENA_BYTES,
        mem.flash,
        mem.ram_static,
        2 * CALIBRATION_TURNS,
        cal_ticks,
        blob().len(),
        MICRO.macs()
    );
    let arena = cortex_m::singleton!(: [u8; ARENA_BYTES] = [0; ARENA_BYTES]).ok_or(
        Error::BufferTooSmall {
            what: "arena (taken twice)",
            needed: ARENA_BYTES,
            found: 0,
        },
    )?;
    let set = Images::parse(IMAGES).ok_or(Error::BadField {
        field: "images.bin",
        found: 0,
    })?;
    let (mut input, mut codes) = ([0.0f32; 28 * 28], [0i8; 28 * 28]);
    let mut logits = [0i8; 10];
    let mut correct = 0u32;
    for i in 0..set.count {
        let (label, pixels) = set.image(i).ok_or(Error::BadField {
            field: "image index",
            found: i as u32,
        })?;
        // Soft-float: the pixels through the blob's preprocessing and input quantization.
        model.preprocess().apply(pixels, MICRO.input, &mut input)?;
        model.quantize_input(&input, &mut codes)?;
        // Integer only from here.
        let t0 = clock.now();
        model.forward_int8(&codes, arena, &mut logits)?;
        let ticks = clock.since(t0);
        let class = faults::argmax_i8(&logits);
        correct += u32::from(class == label as usize);
        defmt::println!(
            "IMG {=usize} label={=u8} class={=usize} ticks={=u64} logits={=[?]}",
            i,
            label,
            class,
            ticks,
            logits
        );
    }
    if let Some((_, pixels)) = set.image(0) {
        model.preprocess().apply(pixels, MICRO.input, &mut input)?;
        model.quantize_input(&input, &mut codes)?;
        let layers = profile::layers(&model, &codes, arena, &mut logits, &mut clock)?;
        profile::log(&model, &layers);
    }
    defmt::println!(
        "DONE images={=usize} correct={=u32} stack_peak={=u32}",
        set.count,
        correct,
        memory::stack_peak()
    );
    Ok(())
}

firmware_support::exit_on_faults!();
