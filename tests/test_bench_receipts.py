"""The receipt benchmark says where its data goes when the sample is not there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_missing_sample_says_what_to_put_where(tmp_path: Path) -> None:
    folder = tmp_path / "receipts"
    result = subprocess.run(
        [sys.executable, "-m", "bench.receipts", "--dir", str(folder)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1
    assert str(folder / "labels.jsonl") in result.stderr
    assert "sroie_NNN.jpg" in result.stderr and "--dir" in result.stderr
    assert "Traceback" not in result.stderr
