#!/usr/bin/python3
"""Checks an ONNX file written by retort with consumers retort did not write (tests/lua/onnx_spec.lua).

    onnx_check.py MODEL.onnx [INPUT.f32 SHAPE EXPECTED.f32 ...]

SHAPE is "2x3x32x32"; the .f32 files are raw little-endian float32 (what retort computed: the input
and the model's output for it). Several triples check several batch sizes against one file.

1. onnx.checker.check_model(full_check=True): the schema, every node against its operator's
   definition at the declared opset, types.
2. onnx.shape_inference.infer_shapes(strict_mode=True): shapes propagate through every node; the
   inferred output shape is reported (the batch dim should stay symbolic).
3. cv2.dnn.readNetFromONNX + forward on each input: the largest |difference| from the expected
   output, and the output's shape.
4. numpy_eval below, a plain evaluator written from the ONNX operator specifications: the same
   comparison, for every op (OpenCV 4.6 cannot run some of them).
5. onnx.reference (ONNX's own reference evaluator) when this python3-onnx has one (1.13 and later;
   Debian 12 has 1.12): the same comparison.

Prints a Lua table literal (the spec loads it): each stage gives ok = true/false and its error text.
Exits 3 when onnx or numpy is missing (the spec then skips with that message)."""
import sys


def lua(v):
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(float(v)) if isinstance(v, float) else str(v)
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join("[%s] = %s" % (lua(k), lua(x)) for k, x in v.items()) + "}"
    raise TypeError(type(v))


# ------------------------------------------------------------------------------------------------
# A plain numpy evaluator written from the ONNX operator specifications (opset 13; float64
# arithmetic), independent of retort's code: the reference for the ops OpenCV's DNN cannot run.

def numpy_eval(model, x):
    import numpy as np
    from onnx import numpy_helper

    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    env[model.graph.input[0].name] = x.astype(np.float64)

    def attrs(node):
        out = {}
        for a in node.attribute:
            out[a.name] = {1: lambda: a.f, 2: lambda: a.i, 3: lambda: a.s.decode(),
                           6: lambda: list(a.floats), 7: lambda: list(a.ints)}[a.type]()
        return out

    def pool_windows(xp, k, s, d, out_hw):
        # yields (a, b, view) for each kernel offset: view[n, c, i, j] = xp[n, c, i*s + a*d, j*s + b*d]
        for a in range(k[0]):
            for b in range(k[1]):
                yield a, b, xp[:, :, a * d[0]: a * d[0] + s[0] * (out_hw[0] - 1) + 1: s[0],
                               b * d[1]: b * d[1] + s[1] * (out_hw[1] - 1) + 1: s[1]]

    def pad2(v, p, value):
        return np.pad(v, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])), constant_values=value)

    def out_size(n, k, s, p0, p1, d):
        return (n + p0 + p1 - d * (k - 1) - 1) // s + 1

    def conv(X, W, B, a):
        k = W.shape[2:]
        s, d = a.get("strides", [1, 1]), a.get("dilations", [1, 1])
        p, g = a.get("pads", [0, 0, 0, 0]), a.get("group", 1)
        N, C, H, Wd = X.shape
        M = W.shape[0]
        ho, wo = out_size(H, k[0], s[0], p[0], p[2], d[0]), out_size(Wd, k[1], s[1], p[1], p[3], d[1])
        xp = pad2(X, p, 0.0)
        Y = np.zeros((N, M, ho, wo))
        cg, mg = C // g, M // g
        for a_, b_, v in pool_windows(xp, k, s, d, (ho, wo)):
            for gi in range(g):
                Y[:, gi * mg:(gi + 1) * mg] += np.einsum("nchw,mc->nmhw", v[:, gi * cg:(gi + 1) * cg],
                                                         W[gi * mg:(gi + 1) * mg, :, a_, b_])
        if B is not None:
            Y += B.reshape(1, -1, 1, 1)
        return Y

    def conv_transpose(X, W, B, a):
        assert a.get("group", 1) == 1 and not a.get("output_padding") and not a.get("output_shape")
        k = W.shape[2:]
        s, d, p = a.get("strides", [1, 1]), a.get("dilations", [1, 1]), a.get("pads", [0, 0, 0, 0])
        N, C, H, Wd = X.shape
        full = np.zeros((N, W.shape[1], (H - 1) * s[0] + (k[0] - 1) * d[0] + 1, (Wd - 1) * s[1] + (k[1] - 1) * d[1] + 1))
        for a_ in range(k[0]):
            for b_ in range(k[1]):
                full[:, :, a_ * d[0]: a_ * d[0] + s[0] * (H - 1) + 1: s[0],
                     b_ * d[1]: b_ * d[1] + s[1] * (Wd - 1) + 1: s[1]] += np.einsum("nchw,co->nohw", X, W[:, :, a_, b_])
        Y = full[:, :, p[0]: full.shape[2] - p[2], p[1]: full.shape[3] - p[3]]
        if B is not None:
            Y = Y + B.reshape(1, -1, 1, 1)
        return Y

    def pool(X, a, kind):
        assert not a.get("ceil_mode") and not a.get("auto_pad", "NOTSET") != "NOTSET"
        k, s = a["kernel_shape"], a.get("strides", [1, 1])
        p, d = a.get("pads", [0, 0, 0, 0]), a.get("dilations", [1, 1])
        N, C, H, Wd = X.shape
        ho, wo = out_size(H, k[0], s[0], p[0], p[2], d[0]), out_size(Wd, k[1], s[1], p[1], p[3], d[1])
        if kind == "max":
            xp = pad2(X, p, -np.inf)
            Y = np.full((N, C, ho, wo), -np.inf)
            for _, _, v in pool_windows(xp, k, s, d, (ho, wo)):
                Y = np.maximum(Y, v)
            return Y
        xp = pad2(X, p, 0.0)
        ones = pad2(np.ones((1, 1, H, Wd)), p, 0.0)
        total, count = np.zeros((N, C, ho, wo)), np.zeros((1, 1, ho, wo))
        for (_, _, v), (_, _, c) in zip(pool_windows(xp, k, s, d, (ho, wo)), pool_windows(ones, k, s, d, (ho, wo))):
            total += v
            count += c
        return total / (k[0] * k[1]) if a.get("count_include_pad", 0) else total / count

    def reduce_axes(v, axes, keep, fn):
        axes = tuple(range(v.ndim)) if axes is None else tuple(int(i) % v.ndim for i in axes)
        return fn(v, axis=axes, keepdims=bool(keep))

    def softmax(v, axis):
        e = np.exp(v - v.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    unary = {"Relu": lambda v: np.maximum(v, 0), "Tanh": np.tanh, "Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
             "Exp": np.exp, "Log": np.log, "Sqrt": np.sqrt, "Abs": np.abs, "Neg": np.negative,
             "Reciprocal": lambda v: 1 / v, "Identity": lambda v: v}
    binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power,
              "Max": np.maximum, "Min": np.minimum}
    for node in model.graph.node:
        a = attrs(node)
        ins = [env[n] if n else None for n in node.input]
        op = node.op_type
        X = ins[0]
        if op in unary:
            Y = unary[op](X)
        elif op in binary:
            Y = ins[0]
            for other in ins[1:]:
                Y = binary[op](Y.astype(np.float64), other.astype(np.float64))
        elif op == "LeakyRelu":
            Y = np.where(X < 0, a.get("alpha", 0.01) * X, X)
        elif op == "Clip":
            lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
            hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
            Y = np.minimum(np.maximum(X, lo), hi)
        elif op == "MatMul":
            Y = np.matmul(X, ins[1])
        elif op == "Gemm":
            A = X.T if a.get("transA", 0) else X
            B = ins[1].T if a.get("transB", 0) else ins[1]
            Y = a.get("alpha", 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                Y = Y + a.get("beta", 1.0) * ins[2]
        elif op == "Conv":
            Y = conv(X, ins[1], ins[2] if len(ins) > 2 else None, a)
        elif op == "ConvTranspose":
            Y = conv_transpose(X, ins[1], ins[2] if len(ins) > 2 else None, a)
        elif op == "BatchNormalization":
            shape = (1, -1) + (1,) * (X.ndim - 2)
            scale, bias, mean, var = (t.reshape(shape) for t in ins[1:5])
            Y = (X - mean) / np.sqrt(var + a.get("epsilon", 1e-5)) * scale + bias
        elif op == "MaxPool":
            Y = pool(X, a, "max")
        elif op == "AveragePool":
            Y = pool(X, a, "avg")
        elif op == "GlobalAveragePool":
            Y = X.mean(axis=tuple(range(2, X.ndim)), keepdims=True)
        elif op == "Pad":
            assert a.get("mode", "constant") == "constant"
            p = [int(v) for v in ins[1]]
            r = X.ndim
            value = float(ins[2]) if len(ins) > 2 and ins[2] is not None else 0.0
            Y = np.pad(X, [(p[i], p[i + r]) for i in range(r)], constant_values=value)
        elif op == "Softmax":
            Y = softmax(X, a.get("axis", -1))
        elif op == "LogSoftmax":
            Y = np.log(softmax(X, a.get("axis", -1)))
        elif op == "ReduceSum":
            Y = reduce_axes(X, ins[1] if len(ins) > 1 and ins[1] is not None else None, a.get("keepdims", 1), np.sum)
        elif op in ("ReduceMean", "ReduceMax", "ReduceMin"):
            fn = {"ReduceMean": np.mean, "ReduceMax": np.max, "ReduceMin": np.min}[op]
            Y = reduce_axes(X, a.get("axes"), a.get("keepdims", 1), fn)
        elif op == "Reshape":
            shape = [X.shape[i] if (v == 0 and not a.get("allowzero")) else int(v) for i, v in enumerate(ins[1])]
            Y = X.reshape(shape)
        elif op == "Flatten":
            ax = a.get("axis", 1) % X.ndim if X.ndim else 0
            Y = X.reshape(int(np.prod(X.shape[:ax])), -1)
        elif op == "Transpose":
            Y = np.transpose(X, a.get("perm", list(range(X.ndim))[::-1]))
        elif op == "Slice":
            starts, ends = ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
            idx = [slice(None)] * X.ndim
            for st, en, ax, sp in zip(starts, ends, axes, steps):
                idx[int(ax) % X.ndim] = slice(int(st), int(en), int(sp))
            Y = X[tuple(idx)]
        elif op == "Gather":
            Y = np.take(X, ins[1].astype(np.int64), axis=a.get("axis", 0))
        elif op == "Squeeze":
            Y = np.squeeze(X, axis=tuple(int(v) % X.ndim for v in ins[1]))
        elif op == "Unsqueeze":
            Y = X
            r = X.ndim + len(ins[1])
            for ax in sorted(int(v) % r for v in ins[1]):
                Y = np.expand_dims(Y, ax)
        elif op == "Concat":
            Y = np.concatenate(ins, axis=a["axis"])
        else:
            raise NotImplementedError("the numpy evaluator has no %s" % op)
        env[node.output[0]] = np.asarray(Y)
    return env[model.graph.output[0].name]


def main():
    try:
        import numpy as np
        import onnx
        import onnx.shape_inference
    except ImportError as e:
        print("python3-onnx or python3-numpy is missing: %s" % e, file=sys.stderr)
        return 3
    path = sys.argv[1]
    cases = []
    rest = sys.argv[2:]
    for i in range(0, len(rest), 3):
        shape = [int(s) for s in rest[i + 1].split("x")]
        x = np.fromfile(rest[i], dtype="<f4").reshape(shape)
        y = np.fromfile(rest[i + 2], dtype="<f4")
        cases.append((x, y))
    out = {"onnxVersion": onnx.__version__}

    model = onnx.load(path)
    out["ops"] = sorted({n.op_type for n in model.graph.node})
    out["opset"] = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    try:
        onnx.checker.check_model(model, full_check=True)
        out["checker"] = {"ok": True}
    except Exception as e:  # the checker's own exception types vary across versions
        out["checker"] = {"ok": False, "error": str(e)}

    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        dims = []
        for d in inferred.graph.output[0].type.tensor_type.shape.dim:
            dims.append(d.dim_param if d.HasField("dim_param") else d.dim_value)
        # every intermediate value got a shape (none left unknown)
        unknown = [v.name for v in inferred.graph.value_info if not v.type.tensor_type.HasField("shape")]
        out["shapes"] = {"ok": not unknown, "output": dims, "values": len(inferred.graph.value_info),
                         "unknown": unknown[:5]}
    except Exception as e:
        out["shapes"] = {"ok": False, "error": str(e)}

    try:
        import cv2
        net = cv2.dnn.readNetFromONNX(path)
        worst, shapes = [], []
        for x, y in cases:
            net.setInput(x)
            got = net.forward()
            shapes.append(list(got.shape))
            worst.append(float(np.max(np.abs(got.reshape(-1).astype(np.float64) - y.astype(np.float64))))
                         if got.size == y.size else float("inf"))
        out["opencv"] = {"ok": True, "maxAbs": worst, "shapes": shapes, "version": cv2.__version__,
                         "scale": [float(np.max(np.abs(y))) for _, y in cases]}
    except ImportError as e:
        out["opencv"] = {"ok": False, "missing": True, "error": "python3-opencv is missing: %s" % e}
    except Exception as e:
        lines = [l for l in str(e).splitlines() if "error:" in l] or str(e).strip().splitlines() or [repr(e)]
        out["opencv"] = {"ok": False, "error": lines[-1].strip()}

    try:
        worst = []
        for x, y in cases:
            got = numpy_eval(model, x)
            worst.append(float(np.max(np.abs(got.reshape(-1) - y.astype(np.float64))))
                         if got.size == y.size else float("inf"))
        out["numpy"] = {"ok": True, "maxAbs": worst, "scale": [float(np.max(np.abs(y))) for _, y in cases]}
    except Exception as e:
        out["numpy"] = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}

    try:
        from onnx.reference import ReferenceEvaluator
    except ImportError:
        out["reference"] = {"ok": False, "missing": True,
                            "error": "python3-onnx %s has no reference evaluator (onnx.reference came in 1.13)"
                            % onnx.__version__}
    else:
        try:
            sess = ReferenceEvaluator(model)
            worst = []
            for x, y in cases:
                got = sess.run(None, {model.graph.input[0].name: x})[0]
                worst.append(float(np.max(np.abs(got.reshape(-1).astype(np.float64) - y.astype(np.float64)))))
            out["reference"] = {"ok": True, "maxAbs": worst}
        except Exception as e:
            out["reference"] = {"ok": False, "error": str(e)}

    print("return " + lua(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
