//! torchvision's ImageNet preprocessing (`Resize(256)`, `CenterCrop(224)` on a PIL image),
//! reproduced exactly: checked against torchvision itself, run from the project venv, on the
//! photographs in `tests/data/photos/` (24 JPEGs of varied sizes and aspect ratios, made from
//! photographs scikit-image and matplotlib ship; see its README).
//!
//! Two comparisons: on the pixels Pillow decoded (the preprocessing alone), and from the JPEG
//! files through this project's own decoding (`image_input::decode`: libjpeg-turbo, as
//! Pillow); both must be identical to torchvision's.

use alexnet_core::Shape;
use alexnet_host::image_input::resize_and_crop;
use alexnet_host::npy;
use std::path::PathBuf;

use alexnet_tests::{venv_python, workspace_root as root};

fn photos() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/data/photos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    files
}

/// Largest and mean absolute difference between two byte images.
fn difference(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len());
    let largest = a
        .iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0);
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    (largest, total as f64 / a.len() as f64)
}

#[test]
fn preprocessing_matches_torchvision_on_photographs() {
    let photos = photos();
    assert!(photos.len() >= 20, "{} photographs", photos.len());
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        root().join("tests/python/torchvision_preprocess.py"),
        out.path().to_path_buf(),
    ];
    args.extend(photos.iter().cloned());
    venv_python("torchvision's preprocessing", &args);
    let (shape, crops) = npy::read::<u8>(out.path().join("crops.npy")).unwrap();
    assert_eq!(shape, [photos.len(), 224, 224, 3]);
    let input = Shape::new(3, 224, 224);
    let crop_len = 224 * 224 * 3;

    println!(
        "{:<32} {:>9} {:>10} {:>22}",
        "photograph", "size", "same px", "own decoder: max, mean"
    );
    let (mut worst_same, mut worst_decoded, mut worst_mean) = (0u8, 0u8, 0f64);
    for (i, path) in photos.iter().enumerate() {
        let theirs = &crops[i * crop_len..(i + 1) * crop_len];
        // Pillow's decoded pixels through our resize and crop.
        let (dims, decoded) = npy::read::<u8>(out.path().join(format!("decoded_{i}.npy"))).unwrap();
        let (h, w) = (dims[0], dims[1]);
        let ours = resize_and_crop(&decoded, w, h, 3, 256, input).unwrap();
        let (same, _) = difference(&ours, theirs);
        // The whole resized image too, not just the crop.
        let (_, resized) = npy::read::<u8>(out.path().join(format!("resized_{i}.npy"))).unwrap();
        let (rw, rh) = alexnet_host::image_input::resized_size(w as u32, h as u32, 256);
        let full =
            alexnet_host::resample::resize_bilinear(&decoded, w, h, 3, rw as usize, rh as usize);
        assert!(
            full == resized,
            "{}: the resized image differs",
            path.display()
        );
        // From the file, decoded by the tools.
        let img = alexnet_host::image_input::decode(path).unwrap().to_rgb8();
        assert_eq!((img.width() as usize, img.height() as usize), (w, h));
        let own = resize_and_crop(img.as_raw(), w, h, 3, 256, input).unwrap();
        let (largest, mean) = difference(&own, theirs);
        println!(
            "{:<32} {:>9} {:>10} {:>14} {:>7.3}",
            path.file_name().unwrap().to_string_lossy(),
            format!("{w}x{h}"),
            same,
            largest,
            mean
        );
        worst_same = worst_same.max(same);
        worst_decoded = worst_decoded.max(largest);
        worst_mean = worst_mean.max(mean);
    }
    println!("largest difference: {worst_same} on Pillow's pixels, {worst_decoded} from the files");
    // Pillow's resampling repeated step by step: identical, resized or not.
    assert_eq!(worst_same, 0);
    // The decoders differ (libjpeg-turbo's and zune-jpeg's IDCT roundings and chroma
    // upsampling; 4 and 0.29 when this test was written): a few steps here and there, never a
    // shifted or misplaced image, which would differ by tens everywhere.
    assert!(
        worst_decoded <= 8 && worst_mean < 0.5,
        "{worst_decoded} {worst_mean}"
    );
}
