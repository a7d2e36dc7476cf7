"""Cosine of wiredesk's int8 sentence vectors to its float32 ones on the development texts.

    python benchmarks/embed_cosine.py [DATASETS_DIR] [--cache-dir DIR]

DATASETS_DIR: the development sets (default ../shared/datasets beside the project). Every article's model input is
the one the engine embeds, embedding_input(title, text): ECB+ and AllSides title + body, the headlines title only,
SemEval each text of each pair with no title (as benchmarks/stories.py gives them to the engine). Prints, per set,
the number of texts and the minimum, 1st percentile and mean cosine, and the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daemon.engine.embed import embedding_input, load_embedder  # noqa: E402


def inputs(path: Path) -> list[str]:
    texts = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            obj = json.loads(line)
            if "text1" in obj:  # a SemEval pair: two articles without titles
                texts += [embedding_input("", obj["text1"]), embedding_input("", obj["text2"])]
            else:
                texts.append(embedding_input(obj.get("title"), obj.get("text")))
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("datasets", nargs="?", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--cache-dir", default=None, help="where the int8 graph is kept (default: the user data folder)")
    args = ap.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    f32 = load_embedder(precision="float32")
    int8 = load_embedder(precision="int8", cache_dir=args.cache_dir, report=print)
    if int8.precision != "int8":
        sys.exit("embed_cosine: the int8 encoder is not available")
    print("| set | texts | min | 1st percentile | mean |")
    print("|---|--:|--:|--:|--:|")
    for path in sorted(args.datasets.glob("*-dev.jsonl")):
        texts = inputs(path)
        cos = (f32.embed(texts) * int8.embed(texts)).sum(axis=1)
        print(f"| {path.stem} | {len(texts):,} | {cos.min():.4f} | {np.percentile(cos, 1):.4f} | {cos.mean():.4f} |")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
