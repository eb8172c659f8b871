"""ONNX Runtime as a peer of the core, run by `cargo bench -p alexnet-benches --bench forward`.

The bench writes the net as ONNX (`f32.onnx`, the core's own export, `alexnet_host::onnx`),
the core's f32 logits for one input as raw little-endian f32, and calibration inputs; this
script checks that ONNX Runtime's f32 logits match the core's, quantizes it to int8 with ONNX Runtime's own static
quantization (QDQ, per-channel weights, calibrated on the same inputs as the core's int8
net), and times both with one intra-op thread at batch 1 and batch 8. It prints one JSON
object: the medians in nanoseconds per call.

    python onnxruntime_peer.py NET_DIR
"""

import json
import pathlib
import sys
import time

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def median_ns(sess, x, seconds):
    """Median of the calls' times over about `seconds` (at least 10 calls, after 3)."""
    feed = {"input": x}
    for _ in range(3):
        sess.run(None, feed)
    times, start = [], time.perf_counter()
    while len(times) < 10 or time.perf_counter() - start < seconds:
        t = time.perf_counter_ns()
        sess.run(None, feed)
        times.append(time.perf_counter_ns() - t)
    return float(np.median(times))


class Inputs(CalibrationDataReader):
    def __init__(self, inputs):
        self.inputs = iter(inputs)

    def get_next(self):
        x = next(self.inputs, None)
        return None if x is None else {"input": x[None]}


def main():
    folder = pathlib.Path(sys.argv[1])
    net = json.loads((folder / "net.json").read_text())
    c, h, w = net["input"]
    calibration = np.fromfile(folder / "calibration.f32", dtype="<f4").reshape(-1, c, h, w)
    core_logits = np.fromfile(folder / "core-logits.f32", dtype="<f4")
    x1 = calibration[:1]
    x8 = np.repeat(calibration[:1], 8, axis=0)
    seconds = float(net.get("seconds", 3.0))
    result = {"onnxruntime": ort.__version__, "net": net["name"]}
    f32_path, int8_path = folder / "f32.onnx", folder / "int8.onnx"
    f32 = session(f32_path)
    got = f32.run(None, {"input": x1})[0][0]
    scale = max(float(np.abs(core_logits).max()), 1e-30)
    rel = float(np.abs(got - core_logits).max()) / scale
    if rel > 1e-3:
        raise SystemExit(f"{net['name']}: ONNX Runtime and the core differ by {rel}")
    result["f32_relative_difference"] = rel
    quantize_static(str(f32_path), str(int8_path), Inputs(list(calibration)),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    int8 = session(int8_path)
    for batch, x in ((1, x1), (8, x8)):
        result[f"f32_b{batch}_ns"] = median_ns(f32, x, seconds)
        result[f"int8_b{batch}_ns"] = median_ns(int8, x, seconds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
