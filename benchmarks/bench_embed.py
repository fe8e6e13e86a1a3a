"""Default embedder speed: all-MiniLM-L6-v2 int8 ONNX (``procmem.search.embed.MiniLMEmbedder``).

What it measures, in this process, with the default settings (2 onnxruntime threads
or fewer, batches of 32 sorted by length, truncation at 256 word pieces):

* load: importing onnxruntime + tokenizers (in a fresh interpreter, median of 3),
  then the first load in this process (sha256 check of the 23 MB model file,
  tokenizer, ``InferenceSession``), timed once;
* throughput: ``embed(texts)`` on up to 500 τ-retail train task texts in one call,
  sentences per second, median of 3 runs (after one warm-up run);
* latency: ``embed([text])``, one text per call, for 200 task texts: p50 / p95 / mean
  in ms (after 10 warm-up calls).

Data: the ``task`` field of ``../shared/data/tau-retail/train.jsonl`` (500 traces), or
of the bundled sample when ``../shared`` is missing (fewer texts; printed).

Run: ``.venv/bin/python benchmarks/bench_embed.py`` (about 10 seconds).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from _common import data_file, machine, pct

TEXTS = 500
QUERIES = 200
RUNS = 3


def task_texts(limit: int) -> list[str]:
    path, real = data_file("train")
    with path.open(encoding="utf-8") as f:
        texts = [json.loads(line)["task"] for line in f if line.strip()][:limit]
    where = "real shared data" if real else "FALLBACK bundled sample (../shared missing)"
    print(f"data: {path} ({len(texts)} task texts, {where})")
    return texts


def import_time() -> float:
    """Seconds to import onnxruntime and tokenizers in a fresh interpreter."""
    code = ("import time; t = time.perf_counter(); import onnxruntime, tokenizers; "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout)


def main() -> None:
    print(__doc__.splitlines()[0])
    print(machine())
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    texts = task_texts(TEXTS)

    import_s = statistics.median(import_time() for _ in range(3))
    import onnxruntime
    import tokenizers

    from procmem.search.embed import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    start = time.perf_counter()
    _, tokenizer = embedder._load()  # benchmark only: time the lazy load by itself
    load_s = time.perf_counter() - start
    print(f"onnxruntime {onnxruntime.__version__}, tokenizers {tokenizers.__version__}; "
          f"threads={embedder.threads}, batch_size={embedder.batch_size}, "
          f"max_tokens={embedder.max_tokens}")
    lengths = [len(e.ids) for e in tokenizer.encode_batch(texts)]
    print(f"word pieces per text: mean {statistics.fmean(lengths):.1f}, "
          f"max {max(lengths)} (after truncation)")
    print(f"import onnxruntime + tokenizers (fresh interpreter): {import_s:.3f} s")
    print(f"model load (sha256 + tokenizer + InferenceSession): {load_s:.3f} s")

    embedder.embed(texts)  # warm-up
    runs = []
    for _ in range(RUNS):
        start = time.perf_counter()
        vectors = embedder.embed(texts)
        runs.append(time.perf_counter() - start)
    best = statistics.median(runs)
    print(f"throughput: {len(texts)} texts in {best:.3f} s (median of {RUNS}) = "
          f"{len(texts) / best:.0f} sentences/s; vectors {vectors.shape} {vectors.dtype}")

    queries = (texts * (QUERIES // len(texts) + 1))[:QUERIES]
    for q in queries[:10]:
        embedder.embed([q])
    times = []
    for q in queries:
        start = time.perf_counter()
        embedder.embed([q])
        times.append((time.perf_counter() - start) * 1000)
    print(f"single-query latency (n={len(times)}): p50 {pct(times, 50):.2f} ms   "
          f"p95 {pct(times, 95):.2f} ms   mean {statistics.fmean(times):.2f} ms")


if __name__ == "__main__":
    main()
