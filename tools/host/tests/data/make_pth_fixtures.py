#!/usr/bin/env python3
"""Writes the PyTorch checkpoint fixtures of `tools/host/src/pth/` with real `torch.save`.

Run from anywhere with the project's venv (torch 2.x, numpy, safetensors):

    .venv/bin/python tools/host/tests/data/make_pth_fixtures.py

Each checkpoint comes with the values torch itself reads from it, written by an independent
writer (the `safetensors` package), so the Rust reader is checked against torch bit for bit.
The files stay small: big tensors are views (overlapping strides) into a few small storages,
which torch.save stores once; the dense expected values of the micro net compress well and
are gzipped.

Files (all in this folder):
  micro.pth                    micro net state_dict (conv1.weight ... fc8.bias), zip format
  micro_legacy.pth             the same, legacy format (_use_new_zipfile_serialization=False)
  micro_expected.safetensors.gz  its dense values, f32, as safetensors_io::load reads them
  generic.pth                  float16/bfloat16/float64, transposed, offset views sharing a
                               storage, an expanded (stride 0) tensor, a Parameter, a 0-d
                               and an empty tensor
  generic_expected.safetensors the values of generic.pth converted to f32 by torch
  tv_nested.pth                torchvision AlexNet's names and shapes, nested as
                               {"state_dict": ..., "epoch": ..., "arch": ...}, pickle protocol 4
  tv_nested_expected.safetensors  for each tensor, values at sampled flat indices
                               (`<name>`, f32) and the indices (`<name>.idx`, i64)
  torchscript.pt               a TorchScript archive (torch.jit.save), which is not a state_dict
"""

import collections
import gzip
import os

import torch
from safetensors.torch import save as st_save

HERE = os.path.dirname(os.path.abspath(__file__))


def out(name):
    return os.path.join(HERE, name)


def expected(sd):
    return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in sd.items()}


def view_into(pool, shape, gen):
    """A view of `pool` with `shape`, random small strides and offset, fitting inside it."""
    for _ in range(1000):
        strides = [int(torch.randint(0, 9, (1,), generator=gen)) for _ in shape]
        span = sum((d - 1) * s for d, s in zip(shape, strides))
        if span < pool.numel():
            offset = int(torch.randint(0, pool.numel() - span, (1,), generator=gen))
            return pool.as_strided(shape, strides, offset)
    raise RuntimeError(f"no strides fit {shape}")


# The micro net (`alexnet_core::builtin::MICRO`): parameterized layers and their shapes.
MICRO = [
    ("conv1", [32, 1, 3, 3]),
    ("conv2", [64, 16, 3, 3]),
    ("conv3", [96, 64, 3, 3]),
    ("conv4", [96, 48, 3, 3]),
    ("conv5", [64, 48, 3, 3]),
    ("fc6", [256, 256]),
    ("fc7", [256, 256]),
    ("fc8", [10, 256]),
]

# torchvision's alexnet state_dict.
TORCHVISION = [
    ("features.0", [64, 3, 11, 11]),
    ("features.3", [192, 64, 5, 5]),
    ("features.6", [384, 192, 3, 3]),
    ("features.8", [256, 384, 3, 3]),
    ("features.10", [256, 256, 3, 3]),
    ("classifier.1", [4096, 9216]),
    ("classifier.4", [4096, 4096]),
    ("classifier.6", [1000, 4096]),
]


def micro():
    gen = torch.Generator().manual_seed(20240601)
    pool = torch.randn(4096, generator=gen) * 0.1
    sd = collections.OrderedDict()
    for i, (name, shape) in enumerate(MICRO):
        if i == 0:
            # An ordinary contiguous tensor with its own storage.
            sd[f"{name}.weight"] = torch.randn(shape, generator=gen) * 0.1
        else:
            sd[f"{name}.weight"] = view_into(pool, shape, gen)
        sd[f"{name}.bias"] = torch.randn(shape[0], generator=gen) * 0.01
    torch.save(sd, out("micro.pth"))
    torch.save(sd, out("micro_legacy.pth"), _use_new_zipfile_serialization=False)
    with gzip.GzipFile(out("micro_expected.safetensors.gz"), "wb", mtime=0) as f:
        f.write(st_save(expected(sd)))


def generic():
    gen = torch.Generator().manual_seed(7)
    base = torch.randn(12, generator=gen)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(3, 4, generator=gen)
    sd["f16"] = (torch.randn(5, generator=gen) * 100).half()
    sd["bf16"] = torch.randn(2, 3, generator=gen).bfloat16()
    sd["f64"] = torch.randn(2, 3, dtype=torch.float64, generator=gen) / 3
    sd["transposed"] = torch.randn(3, 5, generator=gen).t()
    sd["offset_a"] = base[3:9].view(2, 3)
    sd["offset_b"] = base[1:8:3]
    sd["expanded"] = torch.randn(3, 1, generator=gen).expand(3, 4)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=gen))
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    torch.save(sd, out("generic.pth"))
    with open(out("generic_expected.safetensors"), "wb") as f:
        f.write(st_save(expected(sd)))


def tv_nested():
    gen = torch.Generator().manual_seed(11)
    pool = torch.randn(4099, generator=gen) * 0.05
    sd = collections.OrderedDict()
    for name, shape in TORCHVISION:
        sd[f"{name}.weight"] = view_into(pool, shape, gen)
        sd[f"{name}.bias"] = view_into(pool, [shape[0]], gen)
    ckpt = {"epoch": 90, "arch": "alexnet", "state_dict": sd, "best_acc1": 56.5}
    torch.save(ckpt, out("tv_nested.pth"), pickle_protocol=4)
    samples = {}
    for k, v in sd.items():
        n = v.numel()
        idx = torch.cat([torch.arange(0, n, max(1, n // 48)), torch.tensor([n - 1])])
        samples[k] = v.reshape(-1)[idx].to(torch.float32).contiguous()
        samples[k + ".idx"] = idx.to(torch.int64)
    with open(out("tv_nested_expected.safetensors"), "wb") as f:
        f.write(st_save(samples))


def torchscript():
    torch.manual_seed(0)
    torch.jit.script(torch.nn.Linear(2, 2)).save(out("torchscript.pt"))


if __name__ == "__main__":
    micro()
    generic()
    tv_nested()
    torchscript()
    for name in sorted(os.listdir(HERE)):
        if name.endswith((".pth", ".pt", ".safetensors", ".gz")):
            print(f"{os.path.getsize(out(name)):8d}  {name}")
