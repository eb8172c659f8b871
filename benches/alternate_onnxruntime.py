"""Alternates ONNX Runtime (one thread, batch 1) and the core's `alexnet infer --threads 1`
in short bursts, fastest of each burst, so that both see the same state of a noisy machine
(criterion measures them minutes apart). Needs the models `cargo xtask bench` exported
(`target/onnxruntime-peer/<net>/{f32,int8}.onnx`) and the core's blobs of the same nets:

    alexnet init --arch paper --seed 0 -o DIR/paper.blob   (and `quantize` -> paper-int8.blob;
    torchvision as tv.blob, tv-int8.blob)
    .venv/bin/python benches/alternate_onnxruntime.py target/release/alexnet \
        target/onnxruntime-peer DIR tests/data/photos [ROUNDS]

The core's time is `alexnet infer`'s `forward_ms` (with an int8 net, the input's
quantization and the logits' dequantization included), the fastest over the photos."""
import json
import pathlib
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from onnxruntime_peer import session  # noqa: E402  (the bench's own one-thread session)

def ort_min(sess, x, n=15):
    feed = {"input": x}
    sess.run(None, feed)
    best = 1e9
    for _ in range(n):
        t = time.perf_counter(); sess.run(None, feed); best = min(best, time.perf_counter() - t)
    return best * 1e3

def core_min(alexnet, blob, images):
    out = subprocess.run([alexnet, "infer", blob, images, "--threads", "1", "--json"], capture_output=True, text=True).stdout
    return min(json.loads(l)["forward_ms"] for l in out.splitlines() if l.startswith("{"))

alexnet, peer, blobdir, images = sys.argv[1:5]
rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 4
for net, blob in (("paper", "paper"), ("torchvision", "tv")):
    x = np.fromfile(f"{peer}/{net}/calibration.f32", dtype="<f4")
    c, h, w = json.load(open(f"{peer}/{net}/net.json"))["input"]
    x = x.reshape(-1, c, h, w)[:1]
    sessions = {p: session(f"{peer}/{net}/{p}.onnx") for p in ("f32", "int8")}
    for p, suffix in (("f32", ""), ("int8", "-int8")):
        rows = []
        for r in range(rounds):
            o = ort_min(sessions[p], x)
            c_ = core_min(alexnet, f"{blobdir}/{blob}{suffix}.blob", images)
            rows.append((c_, o))
        cs, os_ = [a for a, _ in rows], [b for _, b in rows]
        print(f"{net} {p}: core {' '.join(f'{v:.1f}' for v in cs)} | ORT {' '.join(f'{v:.1f}' for v in os_)} | min core {min(cs):.1f} ms, min ORT {min(os_):.1f} ms, ratio of mins {min(cs)/min(os_):.2f}, per-round ratios {' '.join(f'{a/b:.2f}' for a, b in rows)}")
