//! The built-in members of the AlexNet family.

use super::{Arch, ConvSpec, Layer, LrnConvention, LrnSpec, PoolSpec, Shape};

const fn conv(out_channels: u32, kernel: u32, stride: u32, padding: u32, groups: u32) -> Layer {
    Layer::Conv(ConvSpec {
        out_channels,
        kernel,
        stride,
        padding,
        groups,
    })
}
const fn fc(out_features: u32) -> Layer {
    Layer::Linear { out_features }
}
/// The paper's overlapping pooling: 3x3 windows, stride 2.
const POOL: Layer = Layer::MaxPool(PoolSpec {
    window: 3,
    stride: 2,
});
const RELU: Layer = Layer::Relu;
const DROPOUT: Layer = Layer::Dropout { p: 0.5 };

/// Paper §3.3: n = 5, k = 2, alpha = 1e-4 (not divided by n), beta = 0.75.
pub const PAPER_LRN: LrnSpec = LrnSpec {
    size: 5,
    alpha: 1e-4,
    beta: 0.75,
    k: 2.0,
    convention: LrnConvention::Paper,
};
/// Caffe's bvlc_alexnet: local_size 5, alpha 1e-4 divided by n, beta 0.75, k = 1.
pub const CAFFE_LRN: LrnSpec = LrnSpec {
    size: 5,
    alpha: 1e-4,
    beta: 0.75,
    k: 1.0,
    convention: LrnConvention::AlphaOverN,
};

/// The layers of the two-tower net shared by the paper and Caffe, differing only in LRN.
macro_rules! two_tower {
    ($lrn:expr) => {
        [
            conv(96, 11, 4, 0, 1),
            RELU,
            Layer::Lrn($lrn),
            POOL,
            conv(256, 5, 1, 2, 2),
            RELU,
            Layer::Lrn($lrn),
            POOL,
            conv(384, 3, 1, 1, 1),
            RELU,
            conv(384, 3, 1, 1, 2),
            RELU,
            conv(256, 3, 1, 1, 2),
            RELU,
            POOL,
            Layer::Flatten,
            fc(4096),
            RELU,
            DROPOUT,
            fc(4096),
            RELU,
            DROPOUT,
            fc(1000),
            Layer::Softmax,
        ]
    };
}

const PAPER_LAYERS: [Layer; 24] = two_tower!(PAPER_LRN);
const CAFFE_LAYERS: [Layer; 24] = two_tower!(CAFFE_LRN);

/// The 2012 paper's net: 227x227x3 input (the size that makes the arithmetic work), the
/// two-GPU towers as `groups: 2` in conv2, conv4 and conv5, LRN after conv1 and conv2.
pub const PAPER: Arch<'static> = Arch {
    name: "paper",
    input: Shape::new(3, 227, 227),
    layers: &PAPER_LAYERS,
};

/// Caffe's `bvlc_alexnet`: the paper's shape with Caffe's LRN (alpha / n, k = 1).
pub const CAFFE: Arch<'static> = Arch {
    name: "caffe",
    input: Shape::new(3, 227, 227),
    layers: &CAFFE_LAYERS,
};

const TORCHVISION_LAYERS: [Layer; 21] = [
    conv(64, 11, 4, 2, 1),
    RELU,
    POOL,
    conv(192, 5, 1, 2, 1),
    RELU,
    POOL,
    conv(384, 3, 1, 1, 1),
    RELU,
    conv(256, 3, 1, 1, 1),
    RELU,
    conv(256, 3, 1, 1, 1),
    RELU,
    POOL,
    Layer::AdaptiveAvgPool { out_h: 6, out_w: 6 },
    Layer::Flatten,
    DROPOUT,
    fc(4096),
    RELU,
    DROPOUT,
    fc(4096),
    RELU,
];

const TORCHVISION_ALL: [Layer; 22] = {
    let mut all = [RELU; 22];
    let mut i = 0;
    while i < TORCHVISION_LAYERS.len() {
        all[i] = TORCHVISION_LAYERS[i];
        i += 1;
    }
    all[21] = fc(1000);
    all
};

/// torchvision's `alexnet` ("one weird trick" variant): 224x224x3, no LRN, no groups,
/// adaptive average pooling to 6x6 before the classifier, dropout before fc6 and fc7.
pub const TORCHVISION: Arch<'static> = Arch {
    name: "torchvision",
    input: Shape::new(3, 224, 224),
    layers: &TORCHVISION_ALL,
};

const MICRO_LAYERS: [Layer; 24] = [
    conv(32, 3, 1, 1, 1),
    RELU,
    Layer::Lrn(PAPER_LRN),
    POOL,
    conv(64, 3, 1, 1, 2),
    RELU,
    Layer::Lrn(PAPER_LRN),
    POOL,
    conv(96, 3, 1, 1, 1),
    RELU,
    conv(96, 3, 1, 1, 2),
    RELU,
    conv(64, 3, 1, 1, 2),
    RELU,
    POOL,
    Layer::Flatten,
    fc(256),
    RELU,
    DROPOUT,
    fc(256),
    RELU,
    DROPOUT,
    fc(10),
    Layer::Softmax,
];

/// AlexNet for microcontrollers: 28x28x1 (Fashion-MNIST), the paper's layer pattern scaled
/// down, keeping LRN, overlapping pooling and the grouped convolutions; 268k parameters.
pub const MICRO: Arch<'static> = Arch {
    name: "micro",
    input: Shape::new(1, 28, 28),
    layers: &MICRO_LAYERS,
};

/// Every built-in net.
pub const ALL: [&Arch<'static>; 4] = [&PAPER, &CAFFE, &TORCHVISION, &MICRO];

/// A built-in net by name (`paper`, `caffe`, `torchvision`, `micro`).
pub fn by_name(name: &str) -> Option<&'static Arch<'static>> {
    ALL.iter().copied().find(|a| a.name == name)
}

// Refuse to compile if a built-in descriptor is invalid.
const _: () = {
    let mut i = 0;
    while i < ALL.len() {
        assert!(ALL[i].is_valid());
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchvision_ends_with_fc8() {
        assert_eq!(TORCHVISION.layers.last(), Some(&fc(1000)));
        assert_eq!(TORCHVISION.classes(), 1000);
    }

    #[test]
    fn names_resolve() {
        for a in ALL {
            assert_eq!(by_name(a.name).map(|b| b.name), Some(a.name));
        }
        assert!(by_name("vgg").is_none());
    }

    #[test]
    fn param_layer_names_follow_the_paper() {
        let names = (0..PAPER.layers.len()).filter_map(|i| PAPER.param_layer_name(i));
        let expected = [
            ("conv", 1),
            ("conv", 2),
            ("conv", 3),
            ("conv", 4),
            ("conv", 5),
            ("fc", 6),
            ("fc", 7),
            ("fc", 8),
        ];
        assert!(names.map(|n| (n.prefix, n.number)).eq(expected));
    }

    /// Rows per call of each net's fused chains, in order: two (the pools' stride) unless a
    /// one-row band fits the Cortex-M int8 kernel's padded copy and a two-row band would not.
    #[test]
    fn chains_compute_a_pooled_rows_new_rows_in_one_call() {
        let rows = |arch: &super::super::Arch<'_>| {
            let mut found = [0usize; 3];
            let mut n = 0;
            for step in arch.walk().flatten() {
                let chain = super::super::fused_chain(arch.layers, step.index, step.input);
                if let (Some(chain), Some(slot)) = (chain, found.get_mut(n)) {
                    *slot = chain.rows_per_call();
                    n += 1;
                }
            }
            found
        };
        // conv1 (3 x 11 x 227) and conv2 (48 x 5 x 31 per group) fit 8,192 values with one
        // row, not with two; conv5's band never fits.
        assert_eq!(rows(&PAPER), [1, 1, 2]);
        // conv1 as the paper's; conv2 (64 x 5 x 31) does not fit even with one row.
        assert_eq!(rows(&TORCHVISION), [1, 2, 2]);
        assert_eq!(rows(&MICRO), [2, 2, 2]);
    }
}
