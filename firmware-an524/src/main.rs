//! The 2012 AlexNet on a Cortex-M33 (QEMU's `mps3-an524`), as it would run on a board with
//! external memory: the model blob in DDR where a bootloader copied it (`boot.rs`), parsed
//! in place; the int8 arena and input in on-chip RAM; the f32 buffers, too large for it, in
//! DDR. For each test image it runs the model's precision fused and logs every logit and
//! the instructions it took; then it runs the first image once more layer by layer, logging
//! each layer's instructions and a CRC-32 of its output, so that the host can name the first
//! layer that differs. `tests/firmware_an524.rs` checks all of it against the host.
#![no_std]
#![no_main]

mod boot;

use alexnet_core::builtin::{CAFFE, PAPER, TORCHVISION};
use alexnet_core::{Arch, Error, Model, Precision};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use defmt_semihosting as _;
use firmware_support::clock::{InstructionClock, CALIBRATION_TURNS};
use firmware_support::images::Images;
use firmware_support::{fpenv, memory, profile};

/// The nets this firmware runs: the family's ImageNet-sized members.
const NETS: [&Arch<'static>; 3] = [&PAPER, &CAFFE, &TORCHVISION];

const fn max3(a: usize, b: usize, c: usize) -> usize {
    let ab = if a > b { a } else { b };
    if ab > c {
        ab
    } else {
        c
    }
}

/// The int8 forward pass's arena, on chip (159,167 bytes for the paper net).
const INT8_ARENA: usize = max3(
    PAPER.arena_bytes_int8(),
    CAFFE.arena_bytes_int8(),
    TORCHVISION.arena_bytes_int8(),
);
/// The int8 input codes, on chip beside the arena.
const INPUT_LEN: usize = max3(
    PAPER.input_len(),
    CAFFE.input_len(),
    TORCHVISION.input_len(),
);
/// The f32 forward pass's arena (622 KiB for the paper net: more than this board's 640 KiB of
/// on-chip RAM holds beside the code), in DDR.
const F32_ARENA: usize = max3(
    PAPER.arena_bytes_f32(),
    CAFFE.arena_bytes_f32(),
    TORCHVISION.arena_bytes_f32(),
);
/// The per-layer profile's arena (every layer's output whole, two at a time), in DDR.
const OBSERVED_ARENA: usize = max3(
    PAPER.observed_arena_bytes_f32(),
    CAFFE.observed_arena_bytes_f32(),
    TORCHVISION.observed_arena_bytes_f32(),
);
const CLASSES: usize = 1000;

/// Memory the linker script places (`memory.x`): uninitialized, zeroed by [`Buffers::take`].
#[link_section = ".bram"]
static mut INT8_ARENA_MEM: MaybeUninit<[u8; INT8_ARENA]> = MaybeUninit::uninit();
#[link_section = ".bram"]
static mut CODES_MEM: MaybeUninit<[i8; INPUT_LEN]> = MaybeUninit::uninit();
#[link_section = ".ddr"]
static mut F32_ARENA_MEM: MaybeUninit<[u8; F32_ARENA]> = MaybeUninit::uninit();
#[link_section = ".ddr"]
static mut INPUT_MEM: MaybeUninit<[f32; INPUT_LEN]> = MaybeUninit::uninit();
#[link_section = ".ddr"]
static mut OBSERVED_MEM: MaybeUninit<[u8; OBSERVED_ARENA]> = MaybeUninit::uninit();

/// The buffers, each a `&'static mut` handed out once.
struct Buffers {
    int8_arena: &'static mut [u8],
    codes: &'static mut [i8],
    f32_arena: &'static mut [u8],
    input: &'static mut [f32],
    observed_arena: &'static mut [u8],
}

/// Zeroes `N` values of a plain-number type in uninitialized static memory and hands them out.
///
/// # Safety
/// `mem` is not referenced anywhere else, now or later.
unsafe fn zeroed<T: bytemuck::Zeroable, const N: usize>(
    mem: *mut MaybeUninit<[T; N]>,
) -> &'static mut [T] {
    let ptr = mem.cast::<T>();
    // SAFETY: `mem` is valid for N values of T, exclusively ours (the contract); all-zero bytes
    // are a valid T (Zeroable), written before the slice is made.
    unsafe {
        core::ptr::write_bytes(ptr, 0, N);
        core::slice::from_raw_parts_mut(ptr, N)
    }
}

impl Buffers {
    /// The buffers, the first time; `None` after.
    fn take() -> Option<Self> {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: this runs once (TAKEN), and nothing else names these statics.
        unsafe {
            Some(Buffers {
                int8_arena: zeroed(&raw mut INT8_ARENA_MEM),
                codes: zeroed(&raw mut CODES_MEM),
                f32_arena: zeroed(&raw mut F32_ARENA_MEM),
                input: zeroed(&raw mut INPUT_MEM),
                observed_arena: zeroed(&raw mut OBSERVED_MEM),
            })
        }
    }
}

/// Why the run stopped (each is logged where it is found).
enum Failure {
    Setup,
    Model(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Model(e)
    }
}

#[entry]
fn main() -> ! {
    memory::paint_stack();
    // Before any float operation: in another mode the f32 logits would differ silently.
    let code = if !fpenv::check() {
        debug::EXIT_FAILURE
    } else {
        match run() {
            Ok(()) => debug::EXIT_SUCCESS,
            Err(Failure::Model(e)) => {
                // The core's sentence (its Display), which says what to do about it.
                defmt::error!("FAIL {}", defmt::Display2Format(&e));
                debug::EXIT_FAILURE
            }
            Err(Failure::Setup) => debug::EXIT_FAILURE,
        }
    };
    debug::exit(code);
    loop {
        cortex_m::asm::wfi();
    }
}

fn run() -> Result<(), Failure> {
    let mut clock = InstructionClock::start();
    let cal_ticks = clock.calibrate();
    let loaded = boot::loaded().map_err(|e| {
        defmt::error!(
            "FAIL no model where this firmware looks (boot record at {=usize:#x}): {}",
            boot::RECORD_ADDRESS,
            e
        );
        Failure::Setup
    })?;
    let model = Model::parse(loaded.blob)?;
    let arch = model.arch();
    if !NETS.iter().any(|net| **net == arch) {
        defmt::error!(
            "FAIL the blob holds the architecture {=str}; this firmware runs paper, caffe and torchvision",
            arch.name
        );
        return Err(Failure::Setup);
    }
    let set = Images::parse(loaded.images).ok_or_else(|| {
        defmt::error!("FAIL the test images in DDR are not an ALXIMG02 file");
        Failure::Setup
    })?;
    let b = Buffers::take().ok_or(Failure::Setup)?;
    let (input_len, int8) = (model.input_len(), model.precision() == Precision::Int8);
    let input = b.input.get_mut(..input_len).ok_or(Failure::Setup)?;
    let codes = b.codes.get_mut(..input_len).ok_or(Failure::Setup)?;
    let mem = memory::memory();
    defmt::println!(
        "FW net={=str} precision={=str} kernels={=str} blob={=usize} arena={=usize} arena_in={=str} input_in={=str} flash={=u32} ram_static={=u32} bram_data={=usize} cal_instructions={=u32} cal_ticks={=u64} macs={=u64} images={=usize}",
        arch.name,
        if int8 { "int8" } else { "f32" },
        alexnet_core::kernels::native().name(),
        loaded.blob.len(),
        model.arena_bytes(),
        if int8 { "on-chip" } else { "DDR" },
        if int8 { "on-chip" } else { "DDR" },
        mem.flash,
        mem.ram_static,
        INT8_ARENA + INPUT_LEN,
        2 * CALIBRATION_TURNS,
        cal_ticks,
        model.plan().macs,
        set.count
    );

    let (mut logits, mut q_logits) = ([0.0f32; CLASSES], [0i8; CLASSES]);
    let mut correct = 0u32;
    for i in 0..set.count {
        let (label, pixels) = set.image(i).ok_or(Failure::Setup)?;
        model.preprocess().apply(pixels, arch.input, input)?;
        let (ticks, class) = if int8 {
            model.quantize_input(input, codes)?;
            let t0 = clock.now();
            model.forward_int8(codes, b.int8_arena, &mut q_logits)?;
            let ticks = clock.since(t0);
            model.dequantize_logits(&q_logits, &mut logits)?;
            (ticks, best(&logits))
        } else {
            let t0 = clock.now();
            model.forward(input, b.f32_arena, &mut logits)?;
            (clock.since(t0), best(&logits))
        };
        correct += u32::from(class == label as usize);
        if int8 {
            defmt::println!(
                "IMG {=usize} label={=u8} class={=usize} ticks={=u64} logits={=[?]}",
                i,
                label,
                class,
                ticks,
                q_logits
            );
        } else {
            defmt::println!(
                "IMG {=usize} label={=u8} class={=usize} ticks={=u64} logits={=[?]}",
                i,
                label,
                class,
                ticks,
                logits.map(f32::to_bits)
            );
        }
    }

    // The first image layer by layer: instructions and a digest of each output.
    if let Some((_, pixels)) = set.image(0) {
        model.preprocess().apply(pixels, arch.input, input)?;
        let layers = if int8 {
            model.quantize_input(input, codes)?;
            profile::layers(&model, codes, b.observed_arena, &mut q_logits, &mut clock)?
        } else {
            profile::layers(&model, input, b.observed_arena, &mut logits, &mut clock)?
        };
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

/// The class with the highest logit (lowest index on ties), as the host's `top_k`.
fn best(logits: &[f32]) -> usize {
    let mut best = [0usize];
    alexnet_core::postprocess::top_k(logits, &mut best);
    best[0]
}

firmware_support::exit_on_faults!();
