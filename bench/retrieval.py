"""Help-centre retrieval quality on customers' own questions: top-1 and top-3 hit rates.

Run: .venv/bin/python -m bench.retrieval   (or python bench/retrieval.py)
The question table lives in tests/test_knowledge.py, which asserts the top-3 target.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the table lives in tests/

from tests.test_knowledge import RETRIEVAL_CASES, TOP3_TARGET

from helpline.support.knowledge import HelpCenter
from helpline.support.profile import load_profile


def main() -> None:
    profile = load_profile()
    started = time.perf_counter()
    centre = HelpCenter(profile.articles)
    centre.search("warm up")
    built = time.perf_counter() - started
    top1 = top3 = 0
    misses = []
    started = time.perf_counter()
    for question, expected in RETRIEVAL_CASES:
        found = [p.article_id for p in centre.search(question, k=3)]
        top1 += found[:1] == [expected]
        top3 += expected in found
        if found[:1] != [expected]:
            misses.append((question, expected, found))
    per_query_ms = (time.perf_counter() - started) / len(RETRIEVAL_CASES) * 1000
    n = len(RETRIEVAL_CASES)
    print(
        f"{profile.name} help centre: {len(profile.articles)} articles, {len(centre.passages)} passages"
    )
    print(f"{'questions':<22}{n:>8}")
    print(f"{'top-1 hit rate':<22}{top1 / n:>8.1%}")
    print(f"{'top-3 hit rate':<22}{top3 / n:>8.1%}   (target {TOP3_TARGET:.0%})")
    print(f"{'index build + load':<22}{built * 1000:>6.0f} ms")
    print(f"{'search':<22}{per_query_ms:>6.2f} ms/query")
    if misses:
        print("\nnot first:")
        for question, expected, found in misses:
            print(f"  {question!r}: want {expected}, got {', '.join(found) or 'nothing'}")


if __name__ == "__main__":
    main()
