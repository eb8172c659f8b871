#!/usr/bin/env python3
"""Runs an ONNX model in ONNX Runtime (CPU) on a batch of inputs.

Usage: python onnxruntime_logits.py MODEL.onnx INPUTS.npy OUT.npy

INPUTS.npy is float32 [N, C, H, W]; OUT.npy gets the model's first output for each input,
run one image at a time (so a model with a fixed batch of 1 runs too), stacked.
"""
import sys

import numpy as np
import onnxruntime as ort


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model, inputs, out = sys.argv[1:]
    options = ort.SessionOptions()
    # Plain f32 arithmetic: no fused or reordered graph that would change the roundings more
    # than the kernels already do.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.load(inputs).astype(np.float32)
    logits = [session.run(None, {name: x[i : i + 1]})[0][0] for i in range(len(x))]
    np.save(out, np.stack(logits).astype(np.float32))


if __name__ == "__main__":
    main()
