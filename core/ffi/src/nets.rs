//! Compile-time sizes of the built-in nets, for C code that sizes static buffers: the same
//! numbers the architecture descriptors compute, written out for the C header and checked
//! against the descriptors when this crate compiles.

use alexnet_core::builtin::{CAFFE, MICRO, PAPER, TORCHVISION};
use alexnet_core::Arch;

/// Arena bytes of the paper's net (2012), f32.
pub const ALEXNET_PAPER_ARENA_BYTES_F32: usize = 636_479;
/// Arena bytes of the paper's net, int8.
pub const ALEXNET_PAPER_ARENA_BYTES_INT8: usize = 159_167;
/// Input elements of the paper's net (3 x 227 x 227).
pub const ALEXNET_PAPER_INPUT_LEN: usize = 154_587;
/// Classes of the paper's net.
pub const ALEXNET_PAPER_CLASSES: usize = 1000;

/// Arena bytes of the Caffe reference net, f32.
pub const ALEXNET_CAFFE_ARENA_BYTES_F32: usize = 636_479;
/// Arena bytes of the Caffe reference net, int8.
pub const ALEXNET_CAFFE_ARENA_BYTES_INT8: usize = 159_167;
/// Input elements of the Caffe reference net (3 x 227 x 227).
pub const ALEXNET_CAFFE_INPUT_LEN: usize = 154_587;
/// Classes of the Caffe reference net.
pub const ALEXNET_CAFFE_CLASSES: usize = 1000;

/// Arena bytes of torchvision's AlexNet, f32.
pub const ALEXNET_TORCHVISION_ARENA_BYTES_F32: usize = 477_759;
/// Arena bytes of torchvision's AlexNet, int8.
pub const ALEXNET_TORCHVISION_ARENA_BYTES_INT8: usize = 119_487;
/// Input elements of torchvision's AlexNet (3 x 224 x 224).
pub const ALEXNET_TORCHVISION_INPUT_LEN: usize = 150_528;
/// Classes of torchvision's AlexNet.
pub const ALEXNET_TORCHVISION_CLASSES: usize = 1000;

/// Arena bytes of the micro net (28 x 28 grey, 10 classes), f32.
pub const ALEXNET_MICRO_ARENA_BYTES_F32: usize = 56_767;
/// Arena bytes of the micro net, int8.
pub const ALEXNET_MICRO_ARENA_BYTES_INT8: usize = 14_239;
/// Input elements of the micro net (1 x 28 x 28).
pub const ALEXNET_MICRO_INPUT_LEN: usize = 784;
/// Classes of the micro net.
pub const ALEXNET_MICRO_CLASSES: usize = 10;

/// Whether the four numbers written out for a net are the ones its descriptor computes.
const fn agrees(
    arch: &Arch,
    f32_arena: usize,
    int8_arena: usize,
    input: usize,
    classes: usize,
) -> bool {
    arch.arena_bytes_f32() == f32_arena
        && arch.arena_bytes_int8() == int8_arena
        && arch.input_len() == input
        && arch.classes() == classes
}

const _: () = assert!(
    agrees(
        &PAPER,
        ALEXNET_PAPER_ARENA_BYTES_F32,
        ALEXNET_PAPER_ARENA_BYTES_INT8,
        ALEXNET_PAPER_INPUT_LEN,
        ALEXNET_PAPER_CLASSES
    ),
    "the paper net's C constants differ from its descriptor: `alexnet info` shows the numbers"
);
const _: () = assert!(
    agrees(
        &CAFFE,
        ALEXNET_CAFFE_ARENA_BYTES_F32,
        ALEXNET_CAFFE_ARENA_BYTES_INT8,
        ALEXNET_CAFFE_INPUT_LEN,
        ALEXNET_CAFFE_CLASSES
    ),
    "the Caffe net's C constants differ from its descriptor"
);
const _: () = assert!(
    agrees(
        &TORCHVISION,
        ALEXNET_TORCHVISION_ARENA_BYTES_F32,
        ALEXNET_TORCHVISION_ARENA_BYTES_INT8,
        ALEXNET_TORCHVISION_INPUT_LEN,
        ALEXNET_TORCHVISION_CLASSES
    ),
    "torchvision's C constants differ from its descriptor"
);
const _: () = assert!(
    agrees(
        &MICRO,
        ALEXNET_MICRO_ARENA_BYTES_F32,
        ALEXNET_MICRO_ARENA_BYTES_INT8,
        ALEXNET_MICRO_INPUT_LEN,
        ALEXNET_MICRO_CLASSES
    ),
    "the micro net's C constants differ from its descriptor"
);
