//! The per-layer profile: a model run layer by layer (unfused, every output whole), each
//! layer's SysTick ticks and the CRC-32 of its output's bytes (f32 little-endian, int8 as
//! bytes), computed outside the timed span. The host recomputes the digests and names the
//! first layer whose output differs (`alexnet_host::firmware`), which a wrong logit alone
//! cannot tell.

use crate::clock::InstructionClock;
use alexnet_core::arch::MAX_LAYERS;
use alexnet_core::model::Element;
use alexnet_core::{Error, Model, RunOptions};

/// One layer of the profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerProfile {
    /// SysTick ticks the layer took.
    pub ticks: u64,
    /// CRC-32 of its output's bytes.
    pub crc: u32,
}

/// The profile of one run: one entry per layer of the model, in a fixed-capacity vector
/// (`heapless`: no heap, and as long as the model is, up to the descriptors' limit).
pub type Profile = heapless::Vec<LayerProfile, { MAX_LAYERS }>;

/// Runs `model` on `input` layer by layer and profiles it.
pub fn layers<T: Element>(
    model: &Model<'_>,
    input: &[T],
    arena: &mut [u8],
    logits: &mut [T],
    clock: &mut InstructionClock,
) -> Result<Profile, Error> {
    let mut profile = Profile::new();
    let mut last = clock.now();
    model.run(
        input,
        arena,
        logits,
        RunOptions::new().observe(&mut |_, _, out: &[T]| {
            let ticks = clock.now() - last;
            let crc = crc32fast::hash(bytemuck::cast_slice(out));
            // A model has at most MAX_LAYERS layers (the parser refuses more), so this
            // never fills up; if it did, the host would see a short profile and fail.
            let _ = profile.push(LayerProfile { ticks, crc });
            last = clock.now();
        }),
    )?;
    Ok(profile)
}

/// Logs a profile, one `LAYER <i> kind=<kind> ticks=<n> crc=<hex>` line per layer (the
/// one-model log format `alexnet_host::firmware::parse_run_log` reads).
pub fn log(model: &Model<'_>, profile: &Profile) {
    for (i, (layer, p)) in model.layers().iter().zip(profile).enumerate() {
        defmt::println!(
            "LAYER {=usize} kind={=str} ticks={=u64} crc={=u32:08x}",
            i,
            layer.kind_name(),
            p.ticks,
            p.crc
        );
    }
}
