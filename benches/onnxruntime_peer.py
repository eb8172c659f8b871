"""ONNX Runtime as a peer of the core, run by `cargo bench -p alexnet-benches --bench forward`.

The bench writes a net (its layer table as JSON, its weights as raw little-endian f32), the
core's f32 logits for one input, and calibration inputs; this script builds the same net as
an ONNX graph (opset 17: Conv, Relu, LRN, MaxPool, Flatten, Gemm), checks that ONNX Runtime's
f32 logits match the core's, quantizes it to int8 with ONNX Runtime's own static
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
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)


def graph(net, weights):
    """The net as an ONNX model (any batch size)."""
    c, h, w = net["input"]
    nodes, inits = [], []
    x = "input"
    for i, layer in enumerate(net["layers"]):
        kind, y = layer["kind"], f"t{i}"
        if kind == "conv":
            wname, bname = f"w{i}", f"b{i}"
            wt = weights[layer["weight"][0]:layer["weight"][1]].reshape(layer["weight_shape"])
            bt = weights[layer["bias"][0]:layer["bias"][1]]
            inits += [numpy_helper.from_array(wt, wname), numpy_helper.from_array(bt, bname)]
            k, s, p = layer["kernel"], layer["stride"], layer["padding"]
            nodes.append(helper.make_node("Conv", [x, wname, bname], [y], kernel_shape=[k, k],
                                          strides=[s, s], pads=[p, p, p, p],
                                          group=layer["groups"]))
        elif kind == "relu":
            nodes.append(helper.make_node("Relu", [x], [y]))
        elif kind == "lrn":
            # ONNX divides alpha by the size; the paper's convention does not.
            alpha = layer["alpha"] * (layer["size"] if layer["paper_alpha"] else 1)
            nodes.append(helper.make_node("LRN", [x], [y], size=layer["size"], alpha=alpha,
                                          beta=layer["beta"], bias=layer["k"]))
        elif kind == "maxpool":
            k, s = layer["window"], layer["stride"]
            nodes.append(helper.make_node("MaxPool", [x], [y], kernel_shape=[k, k],
                                          strides=[s, s]))
        elif kind == "avgpool":
            # Only ever the identity in the built-in nets at their input size.
            nodes.append(helper.make_node("Identity", [x], [y]))
        elif kind == "flatten":
            nodes.append(helper.make_node("Flatten", [x], [y], axis=1))
        elif kind == "linear":
            wname, bname = f"w{i}", f"b{i}"
            wt = weights[layer["weight"][0]:layer["weight"][1]].reshape(layer["weight_shape"])
            bt = weights[layer["bias"][0]:layer["bias"][1]]
            inits += [numpy_helper.from_array(wt, wname), numpy_helper.from_array(bt, bname)]
            nodes.append(helper.make_node("Gemm", [x, wname, bname], [y], transB=1))
        elif kind in ("dropout", "softmax"):
            continue  # identity at inference; the logits are compared before any softmax
        else:
            raise SystemExit(f"layer {i}: unknown kind {kind}")
        x = y
    nodes.append(helper.make_node("Identity", [x], ["logits"]))
    g = helper.make_graph(
        nodes, net["name"],
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", c, h, w])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", net["classes"]])],
        inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


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
    weights = np.fromfile(folder / "weights.f32", dtype="<f4")
    c, h, w = net["input"]
    calibration = np.fromfile(folder / "calibration.f32", dtype="<f4").reshape(-1, c, h, w)
    core_logits = np.fromfile(folder / "core-logits.f32", dtype="<f4")
    x1 = calibration[:1]
    x8 = np.repeat(calibration[:1], 8, axis=0)
    seconds = float(net.get("seconds", 3.0))
    result = {"onnxruntime": ort.__version__, "net": net["name"]}
    f32_path, int8_path = folder / "f32.onnx", folder / "int8.onnx"
    onnx.save(graph(net, weights), f32_path)
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
