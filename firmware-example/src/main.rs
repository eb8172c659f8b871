//! AlexNet (the `micro` net) on a Cortex-M4F, as a user would put it in their own firmware:
//! the model blobs in flash through `include_model!`, one static arena sized by the core's
//! `const fn`s, test images in flash. For each image it runs the int8 and the f32 path, and
//! logs the classes, the full logits, a digest and the instructions each inference took;
//! then the first image layer by layer: each layer's instructions and output digest.
//! The host (`cargo xtask firmware`, `tests/firmware.rs`) decodes the log and checks every
//! logit against the same core compiled for x86-64.
#![no_std]
#![no_main]

mod images;

use alexnet_core::builtin::MICRO;
use alexnet_core::{include_model, Error, Model, Precision};
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use defmt_semihosting as _;
use firmware_support::{clock, faults, fpenv, memory, profile};

/// One number per layer, as the log prints it.
type Profile<T> = heapless::Vec<T, { alexnet_core::arch::MAX_LAYERS }>;

/// One arena serves both paths, known at compile time. Inference alone needs only
/// `arena_bytes_f32()` / `arena_bytes_int8()` (the fused forward pass); this example also
/// profiles every layer once (`forward_*_observed`, every output whole), which needs the
/// observed sizes.
const ARENA_BYTES: usize = {
    let (a, b) = (
        MICRO.observed_arena_bytes_f32(),
        MICRO.observed_arena_bytes_int8(),
    );
    if a > b {
        a
    } else {
        b
    }
};

#[cfg(not(feature = "wrong-model"))]
fn int8_blob() -> &'static [u8] {
    include_model!("../assets/micro-int8.blob")
}

/// For the bad-input test: a valid blob of another architecture where the int8 model goes.
#[cfg(feature = "wrong-model")]
fn int8_blob() -> &'static [u8] {
    include_model!("../assets/wrong-arch.blob")
}

fn f32_blob() -> &'static [u8] {
    include_model!("../assets/micro-f32.blob")
}

#[entry]
fn main() -> ! {
    memory::paint_stack();
    #[cfg(feature = "wrong-fpu-mode")]
    fpenv::set_flush_to_zero();
    // Before any float operation: in another mode the f32 logits would differ silently.
    let code = if !fpenv::check() {
        debug::EXIT_FAILURE
    } else {
        match run() {
            Ok(()) => debug::EXIT_SUCCESS,
            Err(e) => {
                defmt::error!("FAIL {}", e);
                debug::EXIT_FAILURE
            }
        }
    };
    debug::exit(code);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Parses a blob and checks it against what this firmware was compiled for.
fn load(blob: &'static [u8], precision: Precision, what: &str) -> Result<Model<'static>, Error> {
    let model = Model::parse(blob)?;
    if model.arch() != MICRO {
        defmt::error!(
            "the {} blob holds architecture {=str}, this firmware is built for {=str}",
            what,
            model.arch().name,
            MICRO.name
        );
        return Err(Error::WrongLength {
            what: "architecture (layers)",
            expected: MICRO.layers.len(),
            found: model.layers().len(),
        });
    }
    if model.precision() != precision {
        return Err(Error::WrongPrecision {
            model: model.precision(),
            called: precision,
        });
    }
    if model.arena_bytes() > ARENA_BYTES {
        return Err(Error::BufferTooSmall {
            what: "static arena",
            needed: model.arena_bytes(),
            found: ARENA_BYTES,
        });
    }
    Ok(model)
}

fn run() -> Result<(), Error> {
    let mut clock = clock::InstructionClock::start();
    let cal_ticks = clock.calibrate();
    let int8 = load(int8_blob(), Precision::Int8, "int8")?;
    let f32m = load(f32_blob(), Precision::F32, "f32")?;
    let mem = memory::memory();
    defmt::println!("kernels: {=str}", alexnet_core::kernels::native().name());
    defmt::println!(
        "FW arena={=usize} arena_f32={=usize} arena_int8={=usize} flash={=u32} ram_static={=u32} cal_instructions={=u32} cal_ticks={=u64} int8_blob={=usize} f32_blob={=usize} macs={=u64}",
        ARENA_BYTES,
        MICRO.arena_bytes_f32(),
        MICRO.arena_bytes_int8(),
        mem.flash,
        mem.ram_static,
        2 * clock::CALIBRATION_TURNS,
        cal_ticks,
        int8_blob().len(),
        f32_blob().len(),
        MICRO.macs()
    );

    let arena = cortex_m::singleton!(: [u8; ARENA_BYTES] = [0; ARENA_BYTES]).ok_or(
        Error::BufferTooSmall {
            what: "arena (taken twice)",
            needed: ARENA_BYTES,
            found: 0,
        },
    )?;
    let set = images::embedded().ok_or(Error::BadField {
        field: "images.bin",
        found: 0,
    })?;
    let (mut input, mut codes) = ([0.0f32; 28 * 28], [0i8; 28 * 28]);
    let (mut logits, mut q_logits) = ([0.0f32; 10], [0i8; 10]);
    let (mut right8, mut right32) = (0u32, 0u32);
    for i in 0..set.count {
        let (label, pixels) = set.image(i).ok_or(Error::BadField {
            field: "image index",
            found: i as u32,
        })?;
        // int8: the pixels go through the blob's preprocessing, then the input quantization.
        int8.preprocess().apply(pixels, MICRO.input, &mut input)?;
        int8.quantize_input(&input, &mut codes)?;
        let t0 = clock.now();
        int8.forward_int8(&codes, arena, &mut q_logits)?;
        let int8_ticks = clock.since(t0);
        let class8 = faults::argmax_i8(&q_logits);

        f32m.preprocess().apply(pixels, MICRO.input, &mut input)?;
        let t0 = clock.now();
        f32m.forward(&input, arena, &mut logits)?;
        let f32_ticks = clock.since(t0);
        let mut best = [0usize];
        alexnet_core::postprocess::top_k(&logits, &mut best);
        let bits = logits.map(f32::to_bits);

        right8 += u32::from(class8 == label as usize);
        right32 += u32::from(best[0] == label as usize);
        defmt::println!(
            "IMG {=usize} label={=u8} int8_class={=usize} f32_class={=usize} int8_ticks={=u64} f32_ticks={=u64} digest={=u32:08x} int8={=[?]} f32={=[?]}",
            i,
            label,
            class8,
            best[0],
            int8_ticks,
            f32_ticks,
            digest(&q_logits, &bits),
            q_logits,
            bits
        );
    }
    // The first image layer by layer: where an inference spends its time, and each layer's
    // digest, so that the host can name the first layer that differs.
    if let Some((_, pixels)) = set.image(0) {
        int8.preprocess().apply(pixels, MICRO.input, &mut input)?;
        int8.quantize_input(&input, &mut codes)?;
        let p8 = profile::layers(&int8, &codes, arena, &mut q_logits, &mut clock)?;
        f32m.preprocess().apply(pixels, MICRO.input, &mut input)?;
        let p32 = profile::layers(&f32m, &input, arena, &mut logits, &mut clock)?;
        let ticks = |p: &profile::Profile| p.iter().map(|l| l.ticks).collect::<Profile<u64>>();
        let crcs = |p: &profile::Profile| p.iter().map(|l| l.crc).collect::<Profile<u32>>();
        defmt::println!(
            "LAYERS int8={=[?]} f32={=[?]}",
            ticks(&p8).as_slice(),
            ticks(&p32).as_slice()
        );
        defmt::println!(
            "DIGESTS int8={=[?]} f32={=[?]}",
            crcs(&p8).as_slice(),
            crcs(&p32).as_slice()
        );
    }
    defmt::println!(
        "DONE images={=usize} int8_correct={=u32} f32_correct={=u32} stack_peak={=u32}",
        set.count,
        right8,
        right32,
        memory::stack_peak()
    );
    Ok(())
}

/// FNV-1a over the int8 logits and the f32 logits' bits: one number to eyeball.
fn digest(q: &[i8], bits: &[u32]) -> u32 {
    let mut h = 0x811c_9dc5u32;
    let bytes = q
        .iter()
        .map(|&b| b as u8)
        .chain(bits.iter().flat_map(|w| w.to_le_bytes()));
    for b in bytes {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h
}

firmware_support::exit_on_faults!();
