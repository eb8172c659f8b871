#!/usr/bin/env python3
"""The Python baseline for examples/loader_throughput.rs: the same data work with PIL
(+ torchvision transforms when importable, else PIL + numpy), in images/s per core.

  (a) from the JPEG files: decode, shorter side to 256, centre crop 256, random crop 224,
      flip, normalize to a float tensor (the usual ImageNet training transform); and the
      decode + resize + centre crop part alone (what our one-time preprocessing does);
  (b) from pre-decoded uint8 arrays [N, 3, 256, 256] (what our cached loader does): random
      crop 224, flip, PCA colour noise, per-pixel mean subtraction, to float32.

Usage: loader_pil.py <folder> [--workers N] [--seconds S]
(--workers N runs N processes through multiprocessing; per core = total / N.)
"""
import argparse
import multiprocessing as mp
import os
import sys
import time

import numpy as np
from PIL import Image

try:
    import torch
    from torchvision import transforms

    HAVE_TV = True
except Exception:  # torchvision missing or incompatible: PIL + numpy only
    HAVE_TV = False

SIZE, CROP = 256, 224
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def files_of(folder):
    out = []
    for cls in sorted(os.listdir(folder)):
        d = os.path.join(folder, cls)
        if os.path.isdir(d) and not cls.startswith("."):
            for f in sorted(os.listdir(d)):
                if f.lower().endswith((".jpg", ".jpeg", ".png")):
                    out.append(os.path.join(d, f))
    return out


def decode_256(path):
    """Decode, shorter side to 256 (bilinear, antialiased), centre crop 256x256."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = SIZE / min(w, h)
    im = im.resize((max(SIZE, round(w * s)), max(SIZE, round(h * s))), Image.BILINEAR)
    w, h = im.size
    x, y = (w - SIZE) // 2, (h - SIZE) // 2
    return im.crop((x, y, x + SIZE, y + SIZE))


def full_numpy(path, rng):
    im = np.asarray(decode_256(path), dtype=np.uint8)  # HWC
    x, y = rng.integers(0, SIZE - CROP + 1, 2)
    im = im[y : y + CROP, x : x + CROP]
    if rng.random() < 0.5:
        im = im[:, ::-1]
    t = (im.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(t.transpose(2, 0, 1), dtype=np.float32)


def work_a(args):
    paths, mode, seed = args
    rng = np.random.default_rng(seed)
    if mode == "tv":
        torch.set_num_threads(1)
        tf = transforms.Compose(
            [
                transforms.Resize(SIZE),
                transforms.CenterCrop(SIZE),
                transforms.RandomCrop(CROP),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(MEAN, STD),
            ]
        )
        for p in paths:
            tf(Image.open(p).convert("RGB"))
    elif mode == "numpy":
        for p in paths:
            full_numpy(p, rng)
    else:  # decode + resize + centre crop only, to uint8 CHW
        for p in paths:
            np.ascontiguousarray(np.asarray(decode_256(p)).transpose(2, 0, 1))
    return len(paths)


def timed_a(paths, mode, workers):
    t = time.perf_counter()
    if workers == 1:
        n = work_a((paths, mode, 0))
    else:
        chunks = [(paths[i::workers], mode, i) for i in range(workers)]
        with mp.Pool(workers) as pool:
            n = sum(pool.map(work_a, chunks))
    return n / (time.perf_counter() - t)


def work_b(args):
    """Random crop + flip + PCA noise + per-pixel mean, batches of 128, for `seconds`."""
    arrays, mean, eigval, eigvec, seconds, seed, use_torch = args
    rng = np.random.default_rng(seed)
    n, batch, done = len(arrays), 128, 0
    if use_torch:
        torch.set_num_threads(1)
        data = torch.from_numpy(arrays)
        mean_t = torch.from_numpy(mean)
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        order = rng.permutation(n)
        for s in range(0, n, batch):
            idx = order[s : s + batch]
            offs = rng.integers(0, SIZE - CROP + 1, (len(idx), 2))
            flips = rng.random(len(idx)) < 0.5
            alphas = rng.normal(0, 0.1, (len(idx), 3)).astype(np.float32)
            pca = (alphas * eigval) @ eigvec  # [b, 3] = sum_k alpha_k lambda_k p_k
            if use_torch:
                out = torch.empty((len(idx), 3, CROP, CROP))
                for j, i in enumerate(idx):
                    x, y = offs[j]
                    v = data[i, :, y : y + CROP, x : x + CROP].float()
                    v = v + torch.from_numpy(pca[j]).view(3, 1, 1)
                    v = v - mean_t[:, y : y + CROP, x : x + CROP]
                    if flips[j]:
                        v = v.flip(2)
                    out[j] = v
            else:
                out = np.empty((len(idx), 3, CROP, CROP), np.float32)
                for j, i in enumerate(idx):
                    x, y = offs[j]
                    v = arrays[i, :, y : y + CROP, x : x + CROP].astype(np.float32)
                    v += pca[j][:, None, None]
                    v -= mean[:, y : y + CROP, x : x + CROP]
                    if flips[j]:
                        v = v[:, :, ::-1]
                    out[j] = v
            done += len(idx)
    return done, time.perf_counter() - t


def timed_b(arrays, mean, eigval, eigvec, seconds, workers, use_torch):
    args = [(arrays, mean, eigval, eigvec, seconds, i, use_torch) for i in range(workers)]
    if workers == 1:
        res = [work_b(args[0])]
    else:
        with mp.Pool(workers) as pool:
            res = pool.map(work_b, args)
    return sum(n for n, _ in res) / max(t for _, t in res)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    w = a.workers
    paths = files_of(a.folder)
    if not paths:
        sys.exit(f"no images in {a.folder}/<class>/")
    import PIL

    print(
        f"{len(paths)} images, {w} worker process(es); PIL {PIL.__version__}, numpy "
        f"{np.__version__}, "
        + (
            f"torch {torch.__version__}, torchvision "
            f"{__import__('torchvision').__version__}"
            if HAVE_TV
            else "no torchvision"
        )
    )
    r = timed_a(paths, "decode", w)
    print(f"(a) decode + resize 256 + centre crop (PIL):  {r:8.1f} images/s, {r / w:8.1f} per core")
    r = timed_a(paths, "numpy", w)
    print(f"(a) full transform, PIL + numpy:               {r:8.1f} images/s, {r / w:8.1f} per core")
    if HAVE_TV:
        r = timed_a(paths, "tv", w)
        print(f"(a) full transform, torchvision:               {r:8.1f} images/s, {r / w:8.1f} per core")

    arrays = np.stack([np.asarray(decode_256(p)).transpose(2, 0, 1) for p in paths])
    mean = arrays.astype(np.float64).mean(0).astype(np.float32)
    pix = arrays.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    eigval, eigvec = np.linalg.eigh(np.cov(pix))
    eigval, eigvec = eigval.astype(np.float32), eigvec.T.astype(np.float32)  # rows = vectors
    r = timed_b(arrays, mean, eigval, eigvec, a.seconds, w, False)
    print(f"(b) cached crop+flip+PCA+mean, numpy:          {r:8.1f} images/s, {r / w:8.1f} per core")
    if HAVE_TV:
        r = timed_b(arrays, mean, eigval, eigvec, a.seconds, w, True)
        print(f"(b) cached crop+flip+PCA+mean, torch:          {r:8.1f} images/s, {r / w:8.1f} per core")


if __name__ == "__main__":
    main()
