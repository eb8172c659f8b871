//! What the host knows about each built-in net beyond its layers, as data: how its tensors
//! are named in weight files, how its images are preprocessed, which data set (and so which
//! labels) it is made for, and how the trainer initializes it. Code asks the profile instead
//! of testing an architecture's name, channel count or class count.

use crate::init::Initializer;
use crate::spec::{MeanSpec, PreprocessSpec};
use alexnet_core::builtin;
use alexnet_core::model::ChannelOrder;
use alexnet_core::{Arch, Layer};
use anyhow::Result;

/// The host-side facts of one built-in net.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    /// The net.
    pub arch: &'static Arch<'static>,
    /// How its parameter tensors are named in safetensors files and PyTorch checkpoints.
    pub tensor_names: TensorNames,
    /// Its default preprocessing.
    pub preprocess: Preprocess,
    /// The data set it classifies, which gives its labels.
    pub dataset: Dataset,
    /// How `host-train` initializes it unless told otherwise.
    pub init: Initializer,
}

/// The naming scheme of a net's parameter tensors (`docs/architectures.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorNames {
    /// `conv1.weight` ... `fc8.bias`, the layer names of the paper.
    Layer,
    /// torchvision's state_dict names: `features.<i>` for the layers before the flatten,
    /// `classifier.<i>` after it (torchvision pools and flattens outside its Sequentials).
    Torchvision,
}

/// How images are resized before cropping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resize {
    /// The shorter side to this many pixels (the paper's 256).
    ShorterSide(u32),
    /// The shorter side to the net's input side (no crop margin).
    InputSide,
}

/// A net's default preprocessing, as constant data ([`PreprocessSpec`] owns its vectors).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    /// Resizing.
    pub resize: Resize,
    /// Channel order.
    pub channel_order: ChannelOrder,
    /// Factor on `0..=255` pixels.
    pub pixel_scale: f32,
    /// Mean subtracted per channel, after scaling.
    pub mean: &'static [f32],
    /// Standard deviation divided per channel, after the mean.
    pub std: Option<&'static [f32]>,
}

/// The data set a net classifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    /// ILSVRC-2012: 1000 classes of RGB photographs.
    ImageNet,
    /// Fashion-MNIST: 10 classes of 28x28 grey images.
    FashionMnist,
}

/// The 1000 ILSVRC class names, in torchvision's index order.
const IMAGENET_CLASSES: &str = include_str!("../../../data/imagenet-classes.txt");
/// The 10 Fashion-MNIST class names, label 0 to 9.
const FASHION_MNIST_CLASSES: &str = include_str!("../../../data/fashion-mnist-classes.txt");

impl Dataset {
    /// Its class names, in label order.
    pub fn labels(self) -> Vec<String> {
        let text = match self {
            Dataset::ImageNet => IMAGENET_CLASSES,
            Dataset::FashionMnist => FASHION_MNIST_CLASSES,
        };
        text.lines().map(str::to_string).collect()
    }
}

/// ImageNet statistics on `[0, 1]` pixels (torchvision's).
const IMAGENET_MEAN_01: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD_01: [f32; 3] = [0.229, 0.224, 0.225];
/// ImageNet RGB mean on `0..=255` pixels.
const IMAGENET_MEAN_255: [f32; 3] = [123.68, 116.78, 103.94];
/// The same mean in Caffe's BGR order.
const IMAGENET_MEAN_255_BGR: [f32; 3] = [103.94, 116.78, 123.68];

/// Every built-in net's profile, in [`builtin::ALL`]'s order.
pub const PROFILES: [Profile; 4] = [
    // The paper: shorter side to 256, RGB on 0..255, mean subtracted. (The paper's
    // per-pixel mean image replaces this once a model is trained: `MeanSpec::PerPixel`.)
    Profile {
        arch: &builtin::PAPER,
        tensor_names: TensorNames::Layer,
        preprocess: Preprocess {
            resize: Resize::ShorterSide(256),
            channel_order: ChannelOrder::Rgb,
            pixel_scale: 1.0,
            mean: &IMAGENET_MEAN_255,
            std: None,
        },
        dataset: Dataset::ImageNet,
        init: Initializer::Paper,
    },
    // Caffe: BGR, 0..255, mean subtracted.
    Profile {
        arch: &builtin::CAFFE,
        tensor_names: TensorNames::Layer,
        preprocess: Preprocess {
            resize: Resize::ShorterSide(256),
            channel_order: ChannelOrder::Bgr,
            pixel_scale: 1.0,
            mean: &IMAGENET_MEAN_255_BGR,
            std: None,
        },
        dataset: Dataset::ImageNet,
        init: Initializer::Paper,
    },
    // torchvision: pixels to [0, 1], then ImageNet mean and std per channel.
    Profile {
        arch: &builtin::TORCHVISION,
        tensor_names: TensorNames::Torchvision,
        preprocess: Preprocess {
            resize: Resize::ShorterSide(256),
            channel_order: ChannelOrder::Rgb,
            pixel_scale: 1.0 / 255.0,
            mean: &IMAGENET_MEAN_01,
            std: Some(&IMAGENET_STD_01),
        },
        dataset: Dataset::ImageNet,
        init: Initializer::Paper,
    },
    // Fashion-MNIST statistics (mean 0.2860, std 0.3530 on [0, 1] pixels). Kaiming: from
    // the paper's N(0, 0.01) this small net does not start learning (`docs/training.md`).
    Profile {
        arch: &builtin::MICRO,
        tensor_names: TensorNames::Layer,
        preprocess: Preprocess {
            resize: Resize::InputSide,
            channel_order: ChannelOrder::Gray,
            pixel_scale: 1.0 / 255.0,
            mean: &[0.2860],
            std: Some(&[0.3530]),
        },
        dataset: Dataset::FashionMnist,
        init: Initializer::Kaiming,
    },
];

/// The profile of the built-in net called `name`; the error lists the built-in names.
pub fn by_name(name: &str) -> Result<&'static Profile> {
    PROFILES
        .iter()
        .find(|p| p.arch.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = PROFILES.iter().map(|p| p.arch.name).collect();
            anyhow::anyhow!(
                "unknown architecture {name:?}; built in: {}",
                names.join(", ")
            )
        })
}

/// The profile of `arch` if it is a built-in net: same name, input and layers (a blob's
/// architecture, say). `None` for any other.
pub fn of(arch: &Arch<'_>) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| *p.arch == *arch)
}

/// The default preprocessing of any architecture: its profile's for a built-in net. Nothing
/// is known about another one, so it gets that of the first built-in net with as many input
/// channels (micro's for grey, the paper's for colour), or the paper's.
pub fn preprocess_for(arch: &Arch<'_>) -> PreprocessSpec {
    let profile = of(arch)
        .or_else(|| PROFILES.iter().find(|p| p.arch.input.c == arch.input.c))
        .unwrap_or(&PROFILES[0]);
    profile.preprocess.spec(arch)
}

/// The class labels of a built-in net; `None` for any other.
pub fn labels_for(arch: &Arch<'_>) -> Option<Vec<String>> {
    of(arch).map(|p| p.dataset.labels())
}

impl Preprocess {
    /// The owned preprocessing record for `arch` (which sets the size of [`Resize::InputSide`]).
    pub fn spec(&self, arch: &Arch<'_>) -> PreprocessSpec {
        PreprocessSpec {
            resize: match self.resize {
                Resize::ShorterSide(side) => side,
                Resize::InputSide => arch.input.h.max(arch.input.w) as u32,
            },
            channel_order: self.channel_order,
            pixel_scale: self.pixel_scale,
            mean: MeanSpec::PerChannel(self.mean.to_vec()),
            std: self.std.map(<[f32]>::to_vec),
        }
    }
}

impl TensorNames {
    /// The name stem of parameterized layer `i` of `arch` (`conv2`, or `features.3` for
    /// torchvision's conv2); the tensors are `<stem>.weight` and `<stem>.bias`. `None` for a
    /// layer without parameters.
    pub fn stem(self, arch: &Arch<'_>, i: usize) -> Option<String> {
        let name = arch.param_layer_name(i)?;
        match self {
            TensorNames::Layer => Some(name.to_string()),
            TensorNames::Torchvision => {
                let flatten = arch
                    .layers
                    .iter()
                    .position(|l| matches!(l, Layer::Flatten))?;
                Some(if i < flatten {
                    format!("features.{i}")
                } else {
                    format!("classifier.{}", i - flatten - 1)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alexnet_core::builtin::{MICRO, PAPER, TORCHVISION};

    #[test]
    fn every_built_in_net_has_one_profile_in_order() {
        let profiled: Vec<&str> = PROFILES.iter().map(|p| p.arch.name).collect();
        let built_in: Vec<&str> = builtin::ALL.iter().map(|a| a.name).collect();
        assert_eq!(profiled, built_in);
        for a in builtin::ALL {
            assert_eq!(by_name(a.name).unwrap().arch, a);
            assert_eq!(of(a).unwrap().arch, a);
        }
    }

    #[test]
    fn an_unknown_name_is_a_clear_error() {
        let e = by_name("vgg16").unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown architecture \"vgg16\"; built in: paper, caffe, torchvision, micro"
        );
    }

    #[test]
    fn a_changed_net_is_not_the_built_in_one() {
        let layers = &PAPER.layers[1..];
        let other = Arch { layers, ..PAPER };
        assert!(of(&other).is_none());
        assert!(labels_for(&other).is_none());
        // Its preprocessing is that of the colour nets.
        assert_eq!(preprocess_for(&other), preprocess_for(&PAPER));
    }

    #[test]
    fn labels_and_preprocessing_fit_each_net() {
        for p in &PROFILES {
            let labels = p.dataset.labels();
            assert_eq!(labels.len(), p.arch.classes(), "{}", p.arch.name);
            let spec = p.preprocess.spec(p.arch);
            let channels = p.arch.input.c;
            assert_eq!(spec.channel_order.channels(), channels, "{}", p.arch.name);
            assert_eq!(p.preprocess.mean.len(), channels, "{}", p.arch.name);
            assert!(p.preprocess.std.is_none_or(|s| s.len() == channels));
            assert!(spec.resize as usize >= p.arch.input.h.max(p.arch.input.w));
        }
        assert_eq!(Dataset::FashionMnist.labels()[9], "Ankle boot");
        assert_eq!(labels_for(&MICRO).unwrap().len(), 10);
        assert_eq!(preprocess_for(&MICRO).resize, 28);
    }

    #[test]
    fn torchvision_names_match_its_state_dict() {
        let stems: Vec<String> = (0..TORCHVISION.layers.len())
            .filter_map(|i| TensorNames::Torchvision.stem(&TORCHVISION, i))
            .collect();
        assert_eq!(
            stems,
            [
                "features.0",
                "features.3",
                "features.6",
                "features.8",
                "features.10",
                "classifier.1",
                "classifier.4",
                "classifier.6"
            ]
        );
        let micro: Vec<String> = (0..MICRO.layers.len())
            .filter_map(|i| TensorNames::Layer.stem(&MICRO, i))
            .collect();
        assert_eq!(micro[0], "conv1");
        assert_eq!(micro.last().unwrap(), "fc8");
    }
}
