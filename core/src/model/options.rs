//! How [`Model::run`] runs: which kernels, fused or not, and who watches.

use super::Model;
use crate::arch::Shape;
use crate::error::Error;
use crate::kernels::{native, Kernels};

/// What sees every layer's whole output: `observe(layer, shape, values)`.
pub type Observer<'o, T> = &'o mut dyn FnMut(usize, Shape, &[T]);

/// Options of [`Model::run`]. [`RunOptions::new`] is what [`Model::forward`] does: the
/// [`native`] kernels, conv -> ReLU/LRN -> max pool chains fused.
pub struct RunOptions<'o, T> {
    kernels: Option<&'o dyn Kernels>,
    schedule: Schedule<'o, T>,
}

/// Whether chains run fused, and whether someone watches each layer.
pub(super) enum Schedule<'o, T> {
    /// Chains fused, a few rows at a time: the smallest arena.
    Fused,
    /// Every layer whole: more memory, fewer and larger kernel calls (what threads split
    /// well).
    Whole,
    /// Every layer whole, each output shown to the observer.
    Observed(Observer<'o, T>),
}

impl<T> Schedule<'_, T> {
    pub(super) fn is_fused(&self) -> bool {
        matches!(self, Schedule::Fused)
    }
}

impl<'o, T> RunOptions<'o, T> {
    /// The native kernels, fused.
    pub fn new() -> Self {
        RunOptions {
            kernels: None,
            schedule: Schedule::Fused,
        }
    }

    /// Runs these kernels (e.g. [`crate::kernels::Reference`], or the host's threaded
    /// ones) instead of the native ones; the same logits, bit for bit.
    pub fn kernels(mut self, kernels: &'o dyn Kernels) -> Self {
        self.kernels = Some(kernels);
        self
    }

    /// Runs every layer whole, in an arena of [`Model::observed_arena_bytes`].
    pub fn unfused(mut self) -> Self {
        if self.schedule.is_fused() {
            self.schedule = Schedule::Whole;
        }
        self
    }

    /// Calls `observe(layer, shape, output)` after every layer with its whole output (so it
    /// runs unfused, in an arena of [`Model::observed_arena_bytes`]); the debugging and
    /// comparison tools use it to see inside the network.
    pub fn observe(mut self, observe: Observer<'o, T>) -> Self {
        self.schedule = Schedule::Observed(observe);
        self
    }

    /// Whether the chains run fused (the arena is then [`Model::arena_bytes`]).
    pub fn is_fused(&self) -> bool {
        self.schedule.is_fused()
    }

    pub(super) fn into_parts(self) -> (&'o dyn Kernels, Schedule<'o, T>) {
        (self.kernels.unwrap_or_else(|| native()), self.schedule)
    }
}

impl<T> Default for RunOptions<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The element types [`Model::run`] takes: `f32` for f32 models, `i8` (codes) for int8
/// ones. Sealed: the two precisions are the contracts.
pub trait Element: Copy + bytemuck::Pod + sealed::Sealed {
    /// Runs `model` on this element type.
    #[doc(hidden)]
    fn run(
        model: &Model<'_>,
        input: &[Self],
        arena: &mut [u8],
        logits: &mut [Self],
        options: RunOptions<'_, Self>,
    ) -> Result<(), Error>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i8 {}
}

impl Element for f32 {
    fn run(
        model: &Model<'_>,
        input: &[f32],
        arena: &mut [u8],
        logits: &mut [f32],
        options: RunOptions<'_, f32>,
    ) -> Result<(), Error> {
        model.run_f32(input, arena, logits, options)
    }
}

impl Element for i8 {
    fn run(
        model: &Model<'_>,
        input: &[i8],
        arena: &mut [u8],
        logits: &mut [i8],
        options: RunOptions<'_, i8>,
    ) -> Result<(), Error> {
        model.run_int8(input, arena, logits, options)
    }
}
