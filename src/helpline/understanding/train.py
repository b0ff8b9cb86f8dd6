"""Train a profile's intent classifier and write its weights next to its intents.toml.

    python -m helpline.understanding.train [PROFILE_FOLDER ...]

With no folder, every built-in profile. Run it after editing a profile's examples and ship
the ``intents.weights.npz`` it writes; a stale file still works (the classifier is then
trained in memory on first use) but costs seconds on the first message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from helpline.understanding.classifier import WEIGHTS_FILE
from helpline.understanding.intents import IntentMatcher, IntentsError, read_intents

BUILT_IN = Path(__file__).resolve().parent.parent / "profiles"


def write_weights(folder: Path) -> Path:
    """Train on the folder's intents.toml examples and write the weights file."""
    specs, threshold = read_intents(folder / "intents.toml")
    matcher = IntentMatcher(specs, threshold)
    path = folder / WEIGHTS_FILE
    matcher.trained().save(path, matcher.key)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, help="profile folders (default: built-in)")
    args = parser.parse_args(argv)
    folders = args.folders or sorted(p.parent for p in BUILT_IN.glob("*/intents.toml"))
    for folder in folders:
        try:
            print(write_weights(folder))
        except IntentsError as error:
            print(error, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
