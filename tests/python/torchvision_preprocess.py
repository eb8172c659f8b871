#!/usr/bin/env python3
"""Reference output of torchvision's ImageNet preprocessing, for comparison tests.

Usage: python torchvision_preprocess.py OUT_DIR IMAGE...

For the images, in the order given (index i from 0), writes with np.save:
  OUT_DIR/crops.npy      uint8 [N, 224, 224, 3]  Resize(256) then CenterCrop(224)
  OUT_DIR/decoded_{i}.npy uint8 [H, W, 3]         decoded RGB pixels, before any resize
  OUT_DIR/resized_{i}.npy uint8 [h, w, 3]         Resize(256) output, before the crop
All of it on PIL images, so no normalisation or float conversion happens here.
"""
import os
import sys

import numpy as np
from PIL import Image
from torchvision import transforms


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_dir, paths = sys.argv[1], sys.argv[2:]
    os.makedirs(out_dir, exist_ok=True)
    # torchvision defaults: bilinear interpolation; on PIL images antialiasing is
    # always on (Pillow's resampling filters scale their support when downscaling).
    # Resize(256) sets the shorter side to 256 and the longer to
    # int(256 * long / short); it returns the image untouched when that is its size.
    resize = transforms.Resize(256)
    # CenterCrop offsets are int(round((len - 224) / 2)): Python rounds half to even.
    crop = transforms.CenterCrop(224)
    crops = []
    for i, p in enumerate(paths):
        img = Image.open(p).convert("RGB")  # greyscale JPEGs become R = G = B
        resized = resize(img)
        cropped = crop(resized)
        np.save(os.path.join(out_dir, f"decoded_{i}.npy"), np.asarray(img, dtype=np.uint8))
        np.save(os.path.join(out_dir, f"resized_{i}.npy"), np.asarray(resized, dtype=np.uint8))
        crops.append(np.asarray(cropped, dtype=np.uint8))
    # Same as Compose([Resize(256), CenterCrop(224)]) applied to each image.
    np.save(os.path.join(out_dir, "crops.npy"), np.stack(crops))


if __name__ == "__main__":
    main()
