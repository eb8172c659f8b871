//! What each built-in architecture expects of its images, and its class labels.

use crate::spec::{MeanSpec, PreprocessSpec};
use alexnet_core::model::ChannelOrder;
use alexnet_core::Arch;

/// The 1000 ILSVRC class names, in torchvision's index order.
pub const IMAGENET_CLASSES: &str = include_str!("../../../data/imagenet-classes.txt");
/// The 10 Fashion-MNIST class names, label 0 to 9.
pub const FASHION_MNIST_CLASSES: &str = include_str!("../../../data/fashion-mnist-classes.txt");

/// ImageNet RGB mean on `0..=255` pixels.
const IMAGENET_MEAN_255: [f32; 3] = [123.68, 116.78, 103.94];

/// Default preprocessing for an architecture: torchvision's and Caffe's by name; otherwise
/// Fashion-MNIST's statistics for a one-channel input and the paper's (ImageNet mean on
/// `0..=255` pixels) for any other, so every architecture gets one.
pub fn preprocess_for(arch: &Arch<'_>) -> PreprocessSpec {
    match arch.name {
        // torchvision: pixels to [0, 1], then ImageNet mean and std per channel.
        "torchvision" => PreprocessSpec {
            resize: 256,
            channel_order: ChannelOrder::Rgb,
            pixel_scale: 1.0 / 255.0,
            mean: MeanSpec::PerChannel(vec![0.485, 0.456, 0.406]),
            std: Some(vec![0.229, 0.224, 0.225]),
        },
        // Caffe: BGR, 0..255, mean subtracted.
        "caffe" => PreprocessSpec {
            resize: 256,
            channel_order: ChannelOrder::Bgr,
            pixel_scale: 1.0,
            mean: MeanSpec::PerChannel(vec![103.94, 116.78, 123.68]),
            std: None,
        },
        // Fashion-MNIST statistics (mean 0.2860, std 0.3530 on [0, 1] pixels).
        _ if arch.input.c == 1 => PreprocessSpec {
            resize: arch.input.h.max(arch.input.w) as u32,
            channel_order: ChannelOrder::Gray,
            pixel_scale: 1.0 / 255.0,
            mean: MeanSpec::PerChannel(vec![0.2860]),
            std: Some(vec![0.3530]),
        },
        // The paper: shorter side to 256, RGB on 0..255, mean subtracted. (The paper's
        // per-pixel mean image replaces this once a model is trained: `MeanSpec::PerPixel`.)
        _ => PreprocessSpec {
            resize: 256,
            channel_order: ChannelOrder::Rgb,
            pixel_scale: 1.0,
            mean: MeanSpec::PerChannel(IMAGENET_MEAN_255.to_vec()),
            std: None,
        },
    }
}

/// Class labels for a net with `classes` outputs: ImageNet for 1000, Fashion-MNIST for 10.
pub fn labels_for(classes: usize) -> Option<Vec<String>> {
    let text = match classes {
        1000 => IMAGENET_CLASSES,
        10 => FASHION_MNIST_CLASSES,
        _ => return None,
    };
    Some(text.lines().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_files_have_the_right_counts() {
        assert_eq!(super::labels_for(1000).unwrap().len(), 1000);
        assert_eq!(super::labels_for(10).unwrap()[9], "Ankle boot");
    }
}
