#!/usr/bin/env python3
"""Re-create the JPEG test photographs in this folder from the wheels they come from.

Usage:
    pip download --no-deps --no-cache-dir -d WHEEL_DIR scikit-image==0.26.0 matplotlib==3.11.2
    python make_photos.py WHEEL_DIR [OUT_DIR]

The source images are read straight out of the wheels (they are zip files), so
neither package needs to be installed; only Pillow is needed. OUT_DIR defaults to
the folder holding this script. The files were made with Pillow 13.0.0; another
Pillow (or its bundled libjpeg-turbo) may give different bytes, but the tests
only need *some* real JPEGs, not these exact bytes.

Every output is: optional crop of the source (box in source pixels), optional
Lanczos resize to the target size, optional conversion to greyscale, then
`Image.save(path, quality=90)` with Pillow's defaults otherwise (4:2:0 chroma
subsampling) or with `subsampling=0` (4:4:4) where the table says 444.
"""
import glob
import io
import os
import sys
import zipfile

from PIL import Image

SKIMAGE = "scikit_image-0.26.0-*.whl"
MATPLOTLIB = "matplotlib-3.11.2-*.whl"

# Source files inside the wheels: short name -> (wheel glob, path in wheel).
SOURCES = {
    "astronaut": (SKIMAGE, "skimage/data/astronaut.png"),
    "chelsea": (SKIMAGE, "skimage/data/chelsea.png"),
    "coffee": (SKIMAGE, "skimage/data/coffee.png"),
    "rocket": (SKIMAGE, "skimage/data/rocket.jpg"),
    "hubble": (SKIMAGE, "skimage/data/hubble_deep_field.jpg"),
    "retina": (SKIMAGE, "skimage/data/retina.jpg"),
    "camera": (SKIMAGE, "skimage/data/camera.png"),
    "brick": (SKIMAGE, "skimage/data/brick.png"),
    "hopper": (MATPLOTLIB, "matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
}

# (index, source, crop box (left, top, right, bottom) or None, (W, H), mode, chroma)
PHOTOS = [
    (1, "astronaut", None, (512, 512), "RGB", "420"),
    (2, "chelsea", None, (451, 300), "RGB", "420"),
    (3, "coffee", None, (600, 400), "RGB", "444"),
    (4, "rocket", None, (640, 427), "RGB", "420"),
    (5, "hopper", None, (512, 600), "RGB", "420"),
    (6, "astronaut", None, (256, 256), "RGB", "420"),
    (7, "chelsea", None, (385, 256), "RGB", "444"),
    (8, "hopper", (58, 0, 454, 600), (256, 387), "RGB", "420"),
    (9, "coffee", None, (500, 334), "RGB", "420"),
    (10, "rocket", (180, 0, 464, 427), (333, 500), "RGB", "420"),
    (11, "hubble", (200, 300, 760, 700), (448, 320), "RGB", "420"),
    (12, "retina", None, (400, 400), "RGB", "444"),
    (13, "astronaut", (64, 0, 448, 512), (384, 512), "RGB", "420"),
    (14, "coffee", None, (320, 240), "RGB", "420"),
    (15, "hopper", (16, 0, 496, 600), (200, 250), "RGB", "444"),
    (16, "astronaut", None, (250, 250), "RGB", "420"),
    (17, "rocket", None, (270, 180), "RGB", "420"),
    (18, "chelsea", None, (383, 255), "RGB", "420"),
    (19, "coffee", (166, 0, 433, 400), (257, 385), "RGB", "444"),
    (20, "retina", (0, 500, 1411, 908), (900, 260), "RGB", "420"),
    (21, "rocket", (252, 0, 392, 427), (230, 700), "RGB", "420"),
    (22, "camera", (32, 88, 480, 424), (448, 336), "L", "-"),
    (23, "brick", (86, 0, 426, 510), (260, 390), "L", "-"),
    (24, "hubble", None, (700, 610), "RGB", "420"),
]


def torchvision_geometry(w, h, size=256, crop=224):
    """Resize(256) output size and CenterCrop(224) offsets, computed as torchvision does."""
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)  # truncation, not rounding
    rw, rh = (size, new_long) if w <= h else (new_long, size)
    if (rw, rh) == (w, h):
        kind = "no resize (shorter side is 256)"
    elif short > size:
        kind = "downscale"
    else:
        kind = "upscale"
    top = int(round((rh - crop) / 2.0))  # Python round: half to even
    left = int(round((rw - crop) / 2.0))
    return (rw, rh), (left, top), kind


def open_source(wheel_dir, name):
    pattern, member = SOURCES[name]
    wheels = sorted(glob.glob(os.path.join(wheel_dir, pattern)))
    if not wheels:
        sys.exit(f"no wheel matching {pattern} in {wheel_dir}")
    with zipfile.ZipFile(wheels[0]) as z:
        im = Image.open(io.BytesIO(z.read(member)))
        im.load()
    return im


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    wheel_dir = sys.argv[1]
    out_dir = sys.argv[2] if len(sys.argv) == 3 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out_dir, exist_ok=True)
    for idx, src, box, (w, h), mode, chroma in PHOTOS:
        im = open_source(wheel_dir, src)
        if box is not None:
            im = im.crop(box)
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.LANCZOS)
        im = im.convert(mode)
        name = f"{idx:02d}-{src}-{w}x{h}{'-gray' if mode == 'L' else ''}.jpg"
        kwargs = {"quality": 90}
        if chroma == "444":
            kwargs["subsampling"] = 0
        path = os.path.join(out_dir, name)
        im.save(path, **kwargs)
        (rw, rh), (left, top), kind = torchvision_geometry(w, h)
        print(f"{name:34s} {chroma:>3s} {os.path.getsize(path):7d} B  "
              f"resize->{rw}x{rh} crop@({left},{top})  {kind}")


if __name__ == "__main__":
    main()
