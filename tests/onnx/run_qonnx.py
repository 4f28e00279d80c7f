#!/usr/bin/env python3
"""Runs every <folder>/<case>/model.onnx (QONNX) that test_onnx_qonnx wrote with a small numpy
evaluator and compares its output with qnas's (expected.bin) as case.json says:
  "exact": the same values in every output (-0 equal to +0);
  "float": max |numpy - qnas| <= tolerance * max |qnas|.
No QONNX runtime installs from Debian, so the QONNX nodes are computed from the formulas of
QONNX's operator documentation (docs/qonnx-custom-ops: quant_op.md, bipolar_quant_op.md,
floatquant_op.md), in float32, and the standard operators the exporter writes with numpy:
Transpose, Conv, Gemm, BatchNormalization, MaxPool, AveragePool (count_include_pad 0),
GlobalAveragePool, Flatten, Relu, Clip, Sigmoid, Mul, Add, Softmax, Unsqueeze, Identity.
It also checks that every Quant / BipolarQuant / FloatQuant whose input is an initializer (the
weights) gives that initializer back unchanged. Exits 77 (ctest: skipped) when onnx or numpy is
missing, unless QNAS_REQUIRE_ONNX_RUNTIMES=1."""
import json
import os
import sys

DOMAIN = "qonnx.custom_op.general"


def missing(message):
    print(message)
    if os.environ.get("QNAS_REQUIRE_ONNX_RUNTIMES") == "1":
        print("QNAS_REQUIRE_ONNX_RUNTIMES=1: failing")
        sys.exit(1)
    sys.exit(77)


try:
    import numpy as np
    import onnx
    from onnx import numpy_helper
except ImportError as e:
    missing(f"qonnx_semantics: numpy or onnx is missing ({e}); Debian: apt-get install python3-onnx python3-numpy "
            "(for /usr/bin/python3)")

F32 = np.float32


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def round_mode(y, mode):
    """The rounding modes of quant_op.md's table, exactly (y float32)."""
    mode = mode.decode() if isinstance(mode, bytes) else mode
    mode = mode.upper()
    f = np.floor(y)
    d = y.astype(np.float64) - f  # exact in float64 (in float32, -0.49999997 + 1 rounds to 0.5)
    if mode == "ROUND":
        return np.round(y)  # half to even
    if mode == "CEIL":
        return np.ceil(y)
    if mode == "FLOOR":
        return f
    if mode == "UP":
        return np.where(y < 0, f, np.ceil(y)).astype(F32)
    if mode == "DOWN":
        return np.trunc(y)
    near = np.where(d > 0.5, f + 1, f)
    if mode == "HALF_UP":  # ties away from zero: 2.5 -> 3, -2.5 -> -3
        tie = np.where(y > 0, f + 1, f)
    elif mode == "HALF_DOWN":  # ties toward zero: 2.5 -> 2, -2.5 -> -2
        tie = np.where(y > 0, f, f + 1)
    else:
        raise ValueError(f"unknown rounding_mode {mode}")
    return np.where(d == 0.5, tie, near).astype(F32)


def quant(x, scale, zeropt, bitwidth, signed, narrow, mode):
    b = int(bitwidth)
    if signed:
        lo, hi = (-(2 ** (b - 1)) + 1 if narrow else -(2 ** (b - 1))), 2 ** (b - 1) - 1
    else:
        lo, hi = 0, (2 ** b - 2 if narrow else 2 ** b - 1)
    with np.errstate(over="ignore"):  # x / scale may overflow to +-inf; the clamp takes it
        y = (x / scale + zeropt).astype(F32)
    y = np.clip(y, F32(lo), F32(hi))
    y = round_mode(y, mode)
    return ((y - zeropt) * scale).astype(F32)


def bipolar_quant(x, scale):
    return (np.where(x >= 0, F32(1), F32(-1)) * scale).astype(F32)


def float_quant(x, scale, e_bits, m_bits, bias, max_val, a):
    x = (x / scale).astype(F32)
    eps = np.finfo(F32).tiny
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        internal = np.floor(np.log2(np.abs(x) + eps)) - m_bits
        internal = np.maximum(internal, F32(1.0 - bias - m_bits))
        internal = np.exp2(internal).astype(F32)
        q = (internal * round_mode((x / internal).astype(F32), a.get("rounding_mode", "ROUND"))).astype(F32)
    top = (2.0 - 2.0 ** (-float(m_bits))) * 2.0 ** (2.0 ** float(e_bits) - 1.0 - float(bias))
    m = F32(min(top, float(max_val)))
    over, under = q > m, q < -m
    q = np.clip(q, -m, m)
    if not a.get("saturation", 1):
        if a.get("has_infinity", 0):
            q = np.where(over, F32(np.inf), np.where(under, F32(-np.inf), q))
        elif a.get("has_nan", 0):
            q = np.where(over | under, F32(np.nan), q)
    return (q * scale).astype(F32)


def pad4(x, pads, value):
    t, l, b, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def windows(x, k, s, out_h, out_w):
    """Yields (i, j, x[:, :, i::s, j::s] cut to the output size) for each kernel position."""
    for i in range(k[0]):
        for j in range(k[1]):
            yield i, j, x[:, :, i:i + s[0] * (out_h - 1) + 1:s[0], j:j + s[1] * (out_w - 1) + 1:s[1]]


def conv(x, w, b, a):
    k, s = a.get("kernel_shape", list(w.shape[2:])), a.get("strides", [1, 1])
    g = a.get("group", 1)
    xp = pad4(x, a.get("pads", [0, 0, 0, 0]), 0)
    n, c, h, wd = xp.shape
    oh, ow = (h - k[0]) // s[0] + 1, (wd - k[1]) // s[1] + 1
    o = w.shape[0]
    cin, cout = c // g, o // g
    y = np.zeros((n, o, oh, ow), F32)
    for gi in range(g):
        xs = xp[:, gi * cin:(gi + 1) * cin]
        ws = w[gi * cout:(gi + 1) * cout]
        for i, j, win in windows(xs, k, s, oh, ow):
            y[:, gi * cout:(gi + 1) * cout] += np.einsum("nchw,oc->nohw", win, ws[:, :, i, j]).astype(F32)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def pool(x, a, mode):
    k, s = a["kernel_shape"], a.get("strides", [1, 1])
    pads = a.get("pads", [0, 0, 0, 0])
    xp = pad4(x, pads, -np.inf if mode == "max" else 0)
    ones = pad4(np.ones((1, 1) + x.shape[2:], F32), pads, 0)
    oh, ow = (xp.shape[2] - k[0]) // s[0] + 1, (xp.shape[3] - k[1]) // s[1] + 1
    if mode == "max":
        y = np.full((x.shape[0], x.shape[1], oh, ow), -np.inf, F32)
        for _, _, win in windows(xp, k, s, oh, ow):
            y = np.maximum(y, win)
        return y
    total = np.zeros((x.shape[0], x.shape[1], oh, ow), F32)
    count = np.zeros((1, 1, oh, ow), F32)
    for (_, _, win), (_, _, cnt) in zip(windows(xp, k, s, oh, ow), windows(ones, k, s, oh, ow)):
        total += win
        count += cnt
    return (total / count).astype(F32)


def run(model, x):
    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    env[model.graph.input[0].name] = x
    initializers = {t.name for t in model.graph.initializer}
    weight_checks = 0
    for node in model.graph.node:
        a = attrs(node)
        i = [env[n] if n else None for n in node.input]
        op = node.op_type
        if node.domain == DOMAIN:
            if op == "Quant":
                y = quant(i[0], i[1], i[2], i[3], a.get("signed", 1), a.get("narrow", 0), a.get("rounding_mode", "ROUND"))
            elif op == "BipolarQuant":
                y = bipolar_quant(i[0], i[1])
            elif op == "FloatQuant":
                y = float_quant(i[0], i[1], i[2], i[3], i[4], i[5], a)
            else:
                raise ValueError(f"{node.name}: unknown QONNX op {op}")
            if node.input[0] in initializers:
                weight_checks += 1
                if not np.array_equal(y, i[0]):
                    raise AssertionError(f"{node.name}: {op} changes its initializer {node.input[0]}")
        elif op == "Transpose":
            y = np.transpose(i[0], a["perm"])
        elif op == "Conv":
            y = conv(i[0], i[1], i[2] if len(i) > 2 else None, a)
        elif op == "Gemm":
            y = (i[0] @ i[1]).astype(F32)
            if len(i) > 2 and i[2] is not None:
                y = (y + i[2]).astype(F32)
        elif op == "BatchNormalization":
            xx, g, b, mean, var = i
            sh = (1, -1, 1, 1)
            y = ((xx - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + F32(a.get("epsilon", 1e-5))) * g.reshape(sh)
                 + b.reshape(sh)).astype(F32)
        elif op == "MaxPool":
            y = pool(i[0], a, "max")
        elif op == "AveragePool":
            y = pool(i[0], a, "avg")
        elif op == "GlobalAveragePool":
            y = i[0].mean(axis=(2, 3), keepdims=True, dtype=F32)
        elif op == "Flatten":
            y = i[0].reshape(i[0].shape[0], -1)
        elif op == "Relu":
            y = np.maximum(i[0], F32(0))
        elif op == "Clip":
            y = np.clip(i[0], i[1], i[2])
        elif op == "Sigmoid":
            y = (1 / (1 + np.exp(-i[0]))).astype(F32)
        elif op == "Mul":
            y = (i[0] * i[1]).astype(F32)
        elif op == "Add":
            y = (i[0] + i[1]).astype(F32)
        elif op == "Softmax":
            e = np.exp(i[0] - i[0].max(axis=a.get("axis", -1), keepdims=True))
            y = (e / e.sum(axis=a.get("axis", -1), keepdims=True)).astype(F32)
        elif op == "Unsqueeze":
            y = i[0]
            for ax in sorted(int(v) for v in i[1]):
                y = np.expand_dims(y, ax)
        elif op == "Identity":
            y = i[0]
        else:
            raise ValueError(f"{node.name}: the evaluator has no {op}")
        env[node.output[0]] = np.asarray(y, dtype=F32)
    return env[model.graph.output[0].name], weight_checks


def main():
    if len(sys.argv) != 2:
        print("usage: run_qonnx.py <models folder>")
        return 2
    root = sys.argv[1]
    cases = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "case.json")))
    if not cases:
        print(f"qonnx_semantics: no cases under {root}")
        return 1
    failed = 0
    for name in cases:
        d = os.path.join(root, name)
        c = json.load(open(os.path.join(d, "case.json")))
        x = np.fromfile(os.path.join(d, "input.bin"), F32).reshape(c["input_shape"])
        want = np.fromfile(os.path.join(d, "expected.bin"), F32).reshape(c["output_shape"])
        try:
            got, checks = run(onnx.load(os.path.join(d, "model.onnx")), x)
            differ = int(np.sum(~((got == want) | (np.isnan(got) & np.isnan(want)))))
            with np.errstate(invalid="ignore"):
                err = float(np.nanmax(np.abs(got - want))) if got.size else 0.0
            if c["check"] == "exact":
                ok = differ == 0
                rule = "identical values"
            else:
                bound = c["tolerance"] * float(np.max(np.abs(want)))
                ok = err <= bound
                rule = f"max |diff| <= {c['tolerance']} * max |qnas| = {bound:.3g}"
            print(f"{name}: {'ok' if ok else 'FAILED'} ({rule}; max |diff| {err:.3g}, {differ} of {got.size} "
                  f"elements differ; {checks} weight tensors given back unchanged by their QONNX node)")
            failed += 0 if ok else 1
        except Exception as e:  # report every case
            failed += 1
            print(f"{name}: FAILED: {e}")
    print(f"qonnx_semantics: {len(cases) - failed} of {len(cases)} QONNX models compute qnas's outputs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
