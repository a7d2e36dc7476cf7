"""The int8 encoder: all-MiniLM-L6-v2's six transformer layers as an ONNX graph with int8 weights, run by onnxruntime.

The graph is written here from the safetensors weights with the ``onnx`` package's helper functions (no model
exporter, no PyTorch). Every product with a weight matrix is quantised: the weights to int8 with one scale per output
column, fixed when the graph is built; the activations at run time per token (one scale per row, its largest
magnitude over 127, the row stored as 128 + round(x / scale) in unsigned 8 bits), so a text's vector never depends on
the other texts of its batch. The products then run in onnxruntime's integer kernels (``MatMulIntegerToFloat``);
attention (``MultiHeadAttention``, with the padding masked), bias + GELU, LayerNorm and softmax stay float32.

What the graph takes and gives: the token embeddings after the embedding LayerNorm (computed in numpy by the
embedder, from the memory-mapped word table) as a padded batch (texts, length, 384) with a (texts, length) mask of
ones and zeros; it gives the mask-weighted sum of the last layer's tokens (texts, 384), which the embedder divides
by the token count and scales to unit length. ``build_graph(..., int8=False)`` writes the same graph with float32
products (the tests compare it with the numpy pass).

Building takes a few seconds, so the result is written once to a cache folder, named by the weights' SHA-256 and
this module's graph version, and every later process (the daemon, its workers, the next run) reads it from there.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

# Changes whenever the graph written by build_graph changes, so that a cached file of an older layout is not used.
GRAPH_VERSION = 1


def cache_path(cache_dir: Path, weights_sha256: str) -> Path:
    """Where the quantised graph of the weights with this SHA-256 is kept."""
    return cache_dir / f"all-MiniLM-L6-v2-{weights_sha256[:16]}-int8-g{GRAPH_VERSION}.onnx"


def build_graph(weights: dict[str, np.ndarray], config: dict[str, Any], int8: bool = True) -> Any:
    """The encoder as an ONNX ModelProto (see the module docstring for inputs and outputs)."""
    from onnx import TensorProto, helper, numpy_helper

    f32 = np.float32
    pre = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    d = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def quantize(x: str, width: int, name: str) -> tuple[str, str]:
        """(x quantised per token, the per-token scales) of float x whose last axis has `width` values."""
        ax = node("Abs", [x], name + "_abs")
        amax = node("ReduceMax", [ax, axes_last], name + "_amax", keepdims=1)
        amax = node("Max", [amax, tiny], name + "_amax_pos")
        rs = node("Mul", [amax, inv_127], name + "_row_scale")
        zp = node("Mul", [rs, zero], name + "_zp0")
        zp = node("Add", [zp, f128], name + "_zp_f")
        zp = node("Cast", [zp], name + "_zp", to=TensorProto.UINT8)
        return node("QuantizeLinear", [x, rs, zp], name + "_xq", axis=-1, block_size=width), rs

    def linear(x: str | tuple[str, str], w: np.ndarray, name: str) -> str:
        """x @ w, without the bias; with int8, w is quantised per output column, x per token at run time."""
        w = np.asarray(w, dtype=f32)
        if not int8:
            assert isinstance(x, str)
            if name not in weights_float:
                weights_float[name] = const(name + "_w", w)
            return node("MatMul", [x, weights_float[name]], name + "_" + x + "_mm")
        xq, rs = quantize(x, w.shape[0], name) if isinstance(x, str) else x
        wq = weights_int8.get(name)
        if wq is None:
            col = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0
            q = np.clip(np.rint(w / col), -127, 127).astype(np.int8)
            wq = weights_int8[name] = (const(name + "_wq", q), const(name + "_col", col.astype(f32)))
        y = node(
            "MatMulIntegerToFloat", [xq, wq[0], one, wq[1], u128], name + "_" + xq + "_mmf", domain="com.microsoft"
        )
        return node("Mul", [y, rs], name + "_" + xq + "_mm")

    def linear_fine(x: str, w: np.ndarray, name: str) -> str:
        """x @ w for rows with outliers (the [CLS] token): x is quantised twice, its rounding error the second
        time, so that the int8 weights see it to about 15 bits."""
        if not int8:
            return linear(x, w, name)
        xq, rs = quantize(x, w.shape[0], name + "_hi")
        back = node("DequantizeLinear", [xq, rs, name + "_hi_zp"], name + "_hi_back", axis=-1, block_size=w.shape[0])
        rest = node("Sub", [x, back], name + "_rest")
        hi = linear((xq, rs), w, name)
        lo = linear(quantize(rest, w.shape[0], name + "_lo"), w, name)
        return node("Add", [hi, lo], name + "_fine")

    def layer_norm(x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
        return node(
            "LayerNormalization",
            [x, const(name + "_w", w.astype(f32)), const(name + "_b", b.astype(f32))],
            name,
            axis=-1,
            epsilon=eps,
        )

    weights_int8: dict[str, tuple[str, str]] = {}
    weights_float: dict[str, str] = {}
    one = const("one", np.array(1.0, dtype=f32))
    axes_1 = const("axes_1", np.array([1], dtype=np.int64))
    zero_i = const("zero_i", np.array([0], dtype=np.int64))
    one_i = const("one_i", np.array([1], dtype=np.int64))
    end_i = const("end_i", np.array([np.iinfo(np.int64).max], dtype=np.int64))
    axes_2 = const("axes_2", np.array([2], dtype=np.int64))
    axes_last = const("axes_last", np.array([-1], dtype=np.int64))
    tiny = const("tiny", np.array(1e-8, dtype=f32))
    inv_127 = const("inv_127", np.array(1.0 / 127.0, dtype=f32))
    zero = const("zero", np.array(0.0, dtype=f32))
    f128 = const("f128", np.array(128.0, dtype=f32))
    u128 = const("u128", np.array(128, dtype=np.uint8))

    # The attention's key padding mask: 1 on tokens, 0 on padding.
    key_mask = node("Cast", ["mask"], "mask_i32", to=TensorProto.INT32)

    # Two streams of tokens: the first of each text ([CLS], whose activations have outliers hundreds of times
    # their median in one channel, so that a plain 8-bit scale would round the rest of the row to nothing) and the
    # others. They meet in the attention only.
    cls = node("Slice", ["embeddings", zero_i, one_i, axes_1], "cls_in")
    rest = node("Slice", ["embeddings", one_i, end_i, axes_1], "rest_in")
    rest_mask = node("Slice", ["mask", one_i, end_i, axes_1], "rest_mask")
    scale = f32(1.0 / np.sqrt(d))
    for i in range(int(config["num_hidden_layers"])):
        p = f"{pre}encoder.layer.{i}."
        a = p + "attention."
        n = f"l{i}_"
        # The attention scale 1 / sqrt(head size) is folded into the query projection.
        wqkv = np.concatenate(
            [
                weights[a + "self.query.weight"].astype(f32) * scale,
                weights[a + "self.key.weight"].astype(f32),
                weights[a + "self.value.weight"].astype(f32),
            ]
        ).T
        bqkv = np.concatenate(
            [
                weights[a + "self.query.bias"].astype(f32) * scale,
                weights[a + "self.key.bias"].astype(f32),
                weights[a + "self.value.bias"].astype(f32),
            ]
        )
        # Query, key and value of the other tokens from one quantisation; the attention adds the biases itself.
        rin = quantize(rest, hidden, n + "in") if int8 else rest
        qkv = []
        for j in range(3):
            w = wqkv[:, hidden * j : hidden * (j + 1)]
            name = n + "qkv"[j]
            both = [linear_fine(cls, w, name), linear(rin, w, name)]
            qkv.append(node("Concat", both, name + "_all", axis=1))
        ctx = node(
            "MultiHeadAttention",
            [*qkv, const(n + "bqkv", bqkv), key_mask],
            n + "context",
            domain="com.microsoft",
            num_heads=heads,
            scale=1.0,  # folded into the query projection
        )
        streams = [
            (node("Slice", [ctx, zero_i, one_i, axes_1], n + "ctx_cls"), cls, linear_fine, n + "cls_"),
            (node("Slice", [ctx, one_i, end_i, axes_1], n + "ctx_rest"), rest, linear, n + "rest_"),
        ]
        out = []
        for c, x, lin, m in streams:
            att = lin(c, weights[a + "output.dense.weight"].T, n + "ao")
            att = node("Add", [att, const(n + "bo", weights[a + "output.dense.bias"].astype(f32))], m + "ao")
            att = node("Add", [att, x], m + "ao_res")
            x = layer_norm(att, weights[a + "output.LayerNorm.weight"], weights[a + "output.LayerNorm.bias"], m + "ln1")
            inter = lin(x, weights[p + "intermediate.dense.weight"].T, n + "ffn1")
            # Bias and GELU in its exact form, x * (1 + erf(x / sqrt 2)) / 2, in one kernel.
            bi = const(n + "bi", weights[p + "intermediate.dense.bias"].astype(f32))
            g = node("BiasGelu", [inter, bi], m + "gelu", domain="com.microsoft")
            y = lin(g, weights[p + "output.dense.weight"].T, n + "ffn2")
            y = node("Add", [y, const(n + "bf", weights[p + "output.dense.bias"].astype(f32))], m + "ffn2")
            y = node("Add", [y, x], m + "ffn2_res")
            out.append(
                layer_norm(y, weights[p + "output.LayerNorm.weight"], weights[p + "output.LayerNorm.bias"], m + "ln2")
            )
        cls, rest = out
    m3 = node("Unsqueeze", [rest_mask, axes_2], "mask_3d")
    masked = node("Mul", [rest, m3], "masked_tokens")
    rest_sum = node("ReduceSum", [masked, axes_1], "rest_sum", keepdims=0)
    cls_2d = node("Squeeze", [cls, axes_1], "cls_out")
    node("Add", [rest_sum, cls_2d], "pooled_sum")

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2-encoder",
        [
            helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["texts", "length", hidden]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["texts", "length"]),
        ],
        [helper.make_tensor_value_info("pooled_sum", TensorProto.FLOAT, ["texts", hidden])],
        inits,
    )
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="wiredesk")
    model.ir_version = 8
    return model


def build(weights: dict[str, np.ndarray], config: dict[str, Any]) -> bytes:
    """The serialised int8 graph of `weights`."""
    data: bytes = build_graph(weights, config).SerializeToString()
    return data


def save(data: bytes, target: Path) -> bool:
    """Write the graph to `target` atomically (a finished file or none); False when the folder is not writable."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".build-", suffix=".onnx")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return False
    return True


def open_session(model: Path | bytes, threads: int) -> Any:
    """An onnxruntime session of the graph (a file or its bytes) on `threads` threads, graph optimisations on.

    Idle threads sleep instead of spinning: the cores are shared with the rest of the daemon."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
