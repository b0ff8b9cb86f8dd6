"""Offline receipt reading on the dev sample: field accuracy, speed and memory.

    .venv/bin/python -m bench.receipts [--limit N] [--json] [--dir PATH]

The parser was tuned on the first 40 receipts (sorted by file name); the last 20 are
reported separately as held out. Dates are compared after normalising the label to
ISO (day-first, as on these Malaysian receipts, unless the second field is above 12);
totals after stripping currency marks from the label (``RM7.00`` → 700 cents).

The sample stays out of the repository (research licence): it is read from
../shared/receipts/dev beside the checkout, or from --dir / HELPLINE_RECEIPTS_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from helpline.receipts import ocr
from helpline.receipts.parser import parse_receipt
from helpline.receipts.schema import ReceiptReadError

DEFAULT_DIR = Path(
    os.environ.get(
        "HELPLINE_RECEIPTS_DIR", Path(__file__).resolve().parents[2] / "shared/receipts/dev"
    )
)
TUNED = 40
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


@dataclass
class Split:
    """Counts for one group of receipts."""

    name: str
    receipts: int = 0
    total_ok: int = 0
    date_ok: int = 0
    predicted_fields: int = 0
    items_add_up: int = 0
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0

    def row(self) -> dict[str, object]:
        n = max(1, self.receipts)
        correct = self.total_ok + self.date_ok
        precision = correct / max(1, self.predicted_fields)
        recall = correct / max(1, 2 * self.receipts)
        f1 = 2 * precision * recall / max(1e-9, precision + recall)
        return {
            "split": self.name,
            "receipts": self.receipts,
            "total_exact": round(self.total_ok / n, 3),
            "date_exact": round(self.date_ok / n, 3),
            "micro_f1": round(f1, 3),
            "items_add_up": round(self.items_add_up / n, 3),
            "s_per_image": round(sum(self.seconds) / n, 2),
            "s_max": round(max(self.seconds, default=0.0), 2),
            # CPU time is what contention cannot inflate: on two idle cores the wall
            # time is at least half of it.
            "cpu_s_per_image": round(self.cpu_seconds / n, 2),
        }


def label_date(text: str) -> str:
    """A label's date (``25/12/2018``, ``30 MAR 2018``, ``19-09-17``) as ISO."""
    text = text.strip()
    named = re.fullmatch(r"(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})", text)
    if named:
        day, month, year = int(named[1]), _MONTHS.index(named[2].upper()) + 1, int(named[3])
    else:
        numeric = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{2,4})", text)
        if not numeric:
            raise ValueError(f"unexpected label date {text!r}")
        day, month, year = int(numeric[1]), int(numeric[2]), int(numeric[3])
        if month > 12:
            day, month = month, day
        year += 2000 if year < 100 else 0
    return date(year, month, day).isoformat()


def label_total(text: str) -> int:
    """A label's total (``RM 21.00``, ``$8.20``, ``43.7``) in cents."""
    return round(float(re.sub(r"[^\d.\-]", "", text)) * 100)


def missing_data(directory: Path) -> str | None:
    """What to put where, when the sample (kept out of the repository) is not there."""
    if (directory / "labels.jsonl").is_file():
        return None
    return (
        f"No receipt sample at {directory}: expected {directory / 'labels.jsonl'} beside the "
        "scans it names. Put the SROIE dev sample there (sroie_NNN.jpg images and labels.jsonl, "
        'one JSON object a line with "file", "date" and "total"; the team\'s copy is '
        "shared/receipts/dev, described in shared/receipts/README.md), or point --dir or "
        "HELPLINE_RECEIPTS_DIR at a folder laid out the same way."
    )


def run(directory: Path, limit: int | None, verbose: bool) -> dict[str, object]:
    labels = sorted(
        (json.loads(line) for line in (directory / "labels.jsonl").read_text().splitlines()),
        key=lambda label: label["file"],
    )[:limit]
    started = time.perf_counter()
    ocr.warm_up()
    load_seconds = time.perf_counter() - started
    splits = {"tuned": Split("tuned (first 40)"), "held": Split("held out (last 20)")}
    for index, label in enumerate(labels):
        split = splits["tuned" if index < TUNED else "held"]
        image = (directory / label["file"]).read_bytes()
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            receipt = parse_receipt(ocr.recognise(image))
            total, day = receipt.total_in_cents, receipt.date
            items = sum(item.price_in_cents for item in receipt.items)
        except ReceiptReadError:
            total, day, items = None, None, 0
        expected = label_total(label["total"])
        # Items carry no labels; lines summing to the total (give or take tax and
        # rounding, 7%) is the proxy that they were all found and priced right.
        split.items_add_up += items > 0 and abs(items - expected) <= 0.07 * abs(expected)
        split.seconds.append(time.perf_counter() - started)
        if verbose and split.seconds[-1] > 3:
            print(f"slow {label['file']}: {split.seconds[-1]:.1f} s", file=sys.stderr)
        split.cpu_seconds += time.process_time() - cpu_started
        split.receipts += 1
        split.predicted_fields += (total is not None) + (day is not None)
        total_ok = total == expected
        date_ok = day == label_date(label["date"])
        split.total_ok += total_ok
        split.date_ok += date_ok
        if verbose and not (total_ok and date_ok):
            print(
                f"miss {label['file']}: total {total} (label {label['total']!r}), "
                f"date {day} (label {label['date']!r})",
                file=sys.stderr,
            )
    everything = Split(
        "all",
        receipts=sum(s.receipts for s in splits.values()),
        total_ok=sum(s.total_ok for s in splits.values()),
        date_ok=sum(s.date_ok for s in splits.values()),
        predicted_fields=sum(s.predicted_fields for s in splits.values()),
        items_add_up=sum(s.items_add_up for s in splits.values()),
        seconds=[t for s in splits.values() for t in s.seconds],
        cpu_seconds=sum(s.cpu_seconds for s in splits.values()),
    )
    return {
        "rows": [s.row() for s in (*splits.values(), everything) if s.receipts],
        "model_load_s": round(load_seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "ocr": {"max_width": ocr.MAX_WIDTH, "detect_side": ocr.DETECT_SIDE},
    }


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--limit", type=int, default=None, help="only the first N receipts")
    arguments.add_argument("--json", action="store_true", help="print JSON instead of a table")
    arguments.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="images + labels.jsonl")
    arguments.add_argument("--verbose", action="store_true", help="list each miss on stderr")
    arguments.add_argument("--max-width", type=int, default=ocr.MAX_WIDTH, help="OCR input width")
    arguments.add_argument(
        "--detect-side", type=int, default=ocr.DETECT_SIDE, help="text detection long side"
    )
    options = arguments.parse_args()
    problem = missing_data(options.dir)
    if problem:
        sys.exit(problem)
    ocr.MAX_WIDTH, ocr.DETECT_SIDE = options.max_width, options.detect_side
    result = run(options.dir, options.limit, options.verbose)
    if options.json:
        print(json.dumps(result, indent=2))
        return
    columns = [
        "split", "receipts", "total_exact", "date_exact", "micro_f1", "items_add_up",
        "s_per_image", "s_max", "cpu_s_per_image",
    ]  # fmt: skip
    table: list[dict[str, object]] = result["rows"]  # type: ignore[assignment]
    rows = [[str(row[c]) for c in columns] for row in table]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    print(
        f"model load {result['model_load_s']} s, peak RSS {result['peak_rss_mb']} MB, "
        f"OCR settings {result['ocr']}"
    )


if __name__ == "__main__":
    main()
