//! Activation shapes.

use super::layer::MAX_ELEMENTS;
use crate::error::ArchProblem;

/// An activation shape, `[channels, height, width]`; flat vectors are `[n, 1, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shape {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl Shape {
    /// `[c, h, w]`.
    pub const fn new(c: usize, h: usize, w: usize) -> Self {
        Shape { c, h, w }
    }

    /// Number of elements. Only meaningful for validated shapes (see [`Shape::checked_len`]).
    pub const fn len(&self) -> usize {
        self.c.saturating_mul(self.h).saturating_mul(self.w)
    }

    /// Whether the shape has no elements.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of elements, refused when zero or above [`MAX_ELEMENTS`].
    pub const fn checked_len(&self) -> Result<usize, ArchProblem> {
        if self.c == 0 || self.h == 0 || self.w == 0 {
            return Err(ArchProblem::ZeroDimension);
        }
        match self.c.checked_mul(self.h) {
            Some(ch) => match ch.checked_mul(self.w) {
                Some(n) if n <= MAX_ELEMENTS => Ok(n),
                _ => Err(ArchProblem::TooLarge),
            },
            None => Err(ArchProblem::TooLarge),
        }
    }

    /// Elements of one channel plane.
    pub const fn plane(&self) -> usize {
        self.h.saturating_mul(self.w)
    }
}

impl core::fmt::Display for Shape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.h == 1 && self.w == 1 {
            write!(f, "{}", self.c)
        } else {
            write!(f, "{}x{}x{}", self.c, self.h, self.w)
        }
    }
}
