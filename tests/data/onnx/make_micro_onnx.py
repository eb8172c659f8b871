#!/usr/bin/env python3
"""Export the "micro" AlexNet (1x28x28 input, Fashion-MNIST sized) to ONNX with
PyTorch's own torch.onnx.export (legacy TorchScript exporter, dynamo=False),
and save PyTorch's logits beside it for a round-trip test.

Run from this folder:
    /work/main/.venv/bin/python make_micro_onnx.py

Outputs (in the current directory):
    micro.onnx        the exported model (opset 17, f32 initializers)
    inputs.npy        float32 [4,1,28,28], normalized input images
    torch_logits.npy  float32 [4,10], PyTorch's outputs on inputs.npy (CPU, f32)
"""
import gzip
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 17
FMNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
MEAN, STD = 0.2860, 0.3530
WEIGHT_SCALE = 6.0 ** 0.5

# LRN, AlexNet paper convention: b = a / (k + alpha * sum_{window of n} a^2)^beta
# with alpha = 1e-4 NOT divided by n. PyTorch's LocalResponseNorm and ONNX's LRN
# both divide alpha by size, so both take alpha = n * 1e-4 = 5e-4.
LRN_SIZE = 5
LRN_ALPHA = LRN_SIZE * 1e-4
LRN_BETA = 0.75
LRN_K = 2.0


class LRNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return F.local_response_norm(x, LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K)

    @staticmethod
    def symbolic(g, x):
        return g.op("LRN", x, alpha_f=LRN_ALPHA, beta_f=LRN_BETA, bias_f=LRN_K, size_i=LRN_SIZE)


class LRN(nn.Module):
    def forward(self, x):
        return LRNFunction.apply(x)


def micro_net():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, stride=1, padding=1),
        nn.ReLU(),
        LRN(),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(32, 64, 3, stride=1, padding=1, groups=2),
        nn.ReLU(),
        LRN(),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(64, 96, 3, stride=1, padding=1),
        nn.ReLU(),
        nn.Conv2d(96, 96, 3, stride=1, padding=1, groups=2),
        nn.ReLU(),
        nn.Conv2d(96, 64, 3, stride=1, padding=1, groups=2),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2),
        nn.Flatten(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(256, 10),
    )


def load_inputs():
    if os.path.exists(FMNIST):
        with gzip.open(FMNIST, "rb") as f:
            raw = f.read()
        magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
        assert magic == 2051 and rows == 28 and cols == 28, (magic, rows, cols)
        px = np.frombuffer(raw[16:16 + 4 * 28 * 28], dtype=np.uint8).reshape(4, 1, 28, 28)
        x = (px.astype(np.float32) / 255.0 - np.float32(MEAN)) / np.float32(STD)
        print(f"inputs: first 4 images of {FMNIST}")
    else:
        x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1)).numpy()
        print("inputs: seeded random (Fashion-MNIST not found)")
    return np.ascontiguousarray(x, dtype=np.float32)


def main():
    torch.manual_seed(0)
    model = micro_net().float().eval()
    # PyTorch's default init (kaiming_uniform, a=sqrt(5)) has weight variance
    # 1/(3*fan_in), which shrinks activations ~3x per ReLU layer: the logits come
    # out ~0.05 and nearly input-independent. Scale every Conv/Linear weight by
    # sqrt(6) so its variance is 2/fan_in (He init); biases keep the default.
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                mod.weight.mul_(WEIGHT_SCALE)

    x = load_inputs()
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy().astype(np.float32)
    print("torch logits:\n", np.array2string(logits, precision=4, suppress_small=True))
    print(f"|logit| max {np.abs(logits).max():.4g}, mean {np.abs(logits).mean():.4g}, "
          f"std across the 4 images (mean over classes) {logits.std(axis=0).mean():.4g}")
    print("argmax per image:", logits.argmax(axis=1).tolist())

    torch.onnx.export(
        model,
        (torch.from_numpy(x[:1]),),
        "micro.onnx",
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,
    )
    np.save("inputs.npy", x)
    np.save("torch_logits.npy", logits)

    import onnx
    import onnxruntime as ort

    m = onnx.load("micro.onnx")
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node]
    print("node op types:", ops)
    allowed = {"Conv", "Relu", "LRN", "MaxPool", "Flatten", "Gemm"}
    assert set(ops) <= allowed, set(ops) - allowed
    assert ops.count("LRN") == 2

    sess = ort.InferenceSession("micro.onnx", providers=["CPUExecutionProvider"])
    ort_one = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    ort_batch = sess.run(None, {"input": x})[0]
    print(f"max |ORT - torch| (one at a time): {np.abs(ort_one - logits).max():.3g}")
    print(f"max |ORT - torch| (batch of 4):    {np.abs(ort_batch - logits).max():.3g}")


if __name__ == "__main__":
    main()
