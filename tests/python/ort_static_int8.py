#!/usr/bin/env python3
"""ONNX Runtime's own static int8 quantization of an f32 ONNX model, run on inputs.

Usage: python ort_static_int8.py MODEL.onnx CALIBRATION.npy EVALUATION.npy OUT_DIR

The .npy inputs are float32 [N, C*H*W] (or [N, C, H, W]), already preprocessed. The model is
pre-processed as ONNX Runtime recommends (`quant_pre_process`), then quantized with
`quantize_static` in the QDQ format with per-channel int8 weights, its ranges calibrated by
min/max on CALIBRATION: once with uint8 activations (ONNX Runtime's recommended CPU setting,
"u8s8") and once with uint8 weights too ("u8u8", its advice for CPUs without VNNI, where the
u8s8 kernels' 16-bit intermediate sums can saturate). The f32 model and the quantized ones run
on EVALUATION, one input at a time; OUT_DIR gets float32 [N, classes] arrays:
  ort_f32.npy             the f32 model
  ort_u8s8.npy            u8s8 on ONNX Runtime's int8 kernels (a default session)
  ort_u8s8_simulated.npy  the same model with graph optimizations off: every QDQ pair run in
                          f32, the recipe's accuracy without the kernels' saturation
  ort_u8u8.npy            u8u8 on the int8 kernels
"""
import pathlib
import sys

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process


class Inputs(CalibrationDataReader):
    def __init__(self, name, inputs):
        self.name, self.inputs = name, iter(inputs)

    def get_next(self):
        x = next(self.inputs, None)
        return None if x is None else {self.name: x[None]}


def session(path, optimize=True):
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    model, calibration, evaluation, out = (pathlib.Path(a) for a in sys.argv[1:])
    f32 = session(model)
    inp = f32.get_inputs()[0]
    shape = [int(d) for d in inp.shape[1:]]
    load = lambda p: np.load(p).astype(np.float32).reshape([-1] + shape)
    calibration, evaluation = load(calibration), load(evaluation)
    # ONNX Runtime's recommended pre-processing (shape inference, graph optimization) first.
    prepared = out / "ort_prepared.onnx"
    quant_pre_process(str(model), str(prepared))
    runs = {"ort_f32": session(model)}
    for name, weights in (("u8s8", QuantType.QInt8), ("u8u8", QuantType.QUInt8)):
        path = out / f"ort_{name}.onnx"
        quantize_static(str(prepared), str(path), Inputs(inp.name, list(calibration)),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=weights,
                        calibrate_method=CalibrationMethod.MinMax)
        runs[f"ort_{name}"] = session(path)
        if name == "u8s8":
            runs["ort_u8s8_simulated"] = session(path, optimize=False)
    for name, sess in runs.items():
        logits = [sess.run(None, {inp.name: x[None]})[0][0] for x in evaluation]
        np.save(out / f"{name}.npy", np.stack(logits).astype(np.float32))


if __name__ == "__main__":
    main()
