"""PyTorch eager reference for `host-train bench`: the paper's AlexNet (two-group conv2/4/5,
LRN with the paper's alpha, overlapping pooling, dropout), full SGD steps on synthetic
batches, images/s. Run with the project's venv:

    .venv/bin/python host-train/examples/eager.py --device cpu --batch 128 --steps 10 --threads 2
    .venv/bin/python host-train/examples/eager.py --device cuda --batch 128 --steps 50
    .venv/bin/python host-train/examples/eager.py --device cuda --channels-last --amp

f32 runs in IEEE f32 (TF32 off), as `host-train` runs on GPUs; `--amp` is bfloat16 autocast.
"""
import argparse
import time

import torch
from torch import nn


def paper_alexnet(classes: int = 1000) -> nn.Module:
    # torch's LocalResponseNorm divides alpha by n; the paper's alpha = 1e-4 is not divided.
    lrn = lambda: nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, classes),
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device(a.device)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    net = paper_alexnet().to(dev, memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, 227, 227, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (a.batch,), device=dev)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=False)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.amp):
            loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(2):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync()
    secs = time.perf_counter() - start
    mode = ", channels-last" * a.channels_last + ", amp bf16" * a.amp
    print(
        f"pytorch eager paper on {a.device} ({torch.get_num_threads()} threads{mode}): batch {a.batch}, "
        f"{a.steps} steps in {secs:.2f} s: {a.batch * a.steps / secs:.1f} images/s"
    )


if __name__ == "__main__":
    main()
