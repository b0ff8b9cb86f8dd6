"""The README's promises: its Python example runs, its first lines are the two commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_python_example_runs(tmp_path: Path) -> None:
    (example,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("tool_call {") and "store_hours" in lines[0]
    assert any("Leeds kitchen delivers from 11:00 to 23:00" in line for line in lines)
    assert lines[-1].startswith("done {")


def test_the_readme_starts_with_the_run_and_test_commands() -> None:
    first_block = README.read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    run, test = first_block.strip().splitlines()
    assert run.endswith(".venv/bin/helpline chat")
    assert test == "scripts/test"
    ci = (README.parent / ".ci" / "run").read_text()
    assert "scripts/test" in ci
