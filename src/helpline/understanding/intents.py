"""The profile's intents (``intents.toml``) and a customer line matched to them by meaning.

Each intent is described by example lines and says where it leads (an article, a tool, a
ticket, a fixed reply). A softmax classifier over the line's embedding, its words and
its letter n-grams (``features``, ``classifier``) gives every intent a probability; its
weights ship with the profile (``intents.weights.npz``) and are loaded on first use, not
at start-up.

Scores are probabilities: over all intents they sum to 1, and a score is how often an
intent given that score turned out right on held-out development lines (0.9 means right
about nine times in ten). So the engine can tell "confident" (a high top score), "two
close" (top and runner-up scores near each other: ask which) and "nothing close" (the top
score below the profile's ``[understanding] threshold``: ``match`` gives None, the menu).
An intent named ``none`` (off-topic lines) competes like any other.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from helpline.understanding.classifier import WEIGHTS_FILE, Softmax, fitted, train, weights_key
from helpline.understanding.embedder import Embedder, default_embedder
from helpline.understanding.features import VERSION, Features

if TYPE_CHECKING:
    from helpline.understanding.embedder import Vectors

LEADS_TO = frozenset(
    {
        "article",
        "order",
        "refund",
        "human",
        "problem",
        "reply",
        "greeting",
        "thanks",
        "goodbye",
        "none",
    }
)


class IntentsError(ValueError):
    """The profile's intents.toml is malformed; the message says where and how to fix it."""


@dataclass(frozen=True)
class IntentSpec:
    """One intent: its examples and where it leads."""

    name: str
    leads_to: str
    examples: tuple[str, ...]
    article: str | None = None
    label: str | None = None
    reply: str | None = None


@dataclass(frozen=True)
class Match:
    """The intent a line was matched to and its probability, the runner-up and its own.

    ``ranked`` holds the best few intents with their probabilities, best first.
    """

    intent: IntentSpec
    score: float
    runner_up: IntentSpec | None
    runner_up_score: float
    ranked: tuple[tuple[IntentSpec, float], ...] = ()


def read_intents(path: Path) -> tuple[tuple[IntentSpec, ...], float]:
    """The intents in ``path`` and the probability threshold; raises IntentsError."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise IntentsError(f"{path} could not be read ({error}); fix the file.") from error
    specs = []
    for name, body in data.get("intents", {}).items():
        leads_to = body.get("leads_to")
        if leads_to not in LEADS_TO:
            raise IntentsError(
                f"{path}: intent {name!r} has leads_to={leads_to!r}; use one of {sorted(LEADS_TO)}."
            )
        if leads_to == "article" and not body.get("article"):
            raise IntentsError(f"{path}: intent {name!r} leads to an article; name it in article.")
        specs.append(
            IntentSpec(
                name=name,
                leads_to=leads_to,
                examples=tuple(str(e) for e in body.get("examples", [])),
                article=body.get("article"),
                label=body.get("label"),
                reply=body.get("reply"),
            )
        )
    threshold = float(data.get("understanding", {}).get("threshold", 0.3))
    return tuple(specs), threshold


class IntentMatcher:
    """Matches lines to a profile's intents with a classifier trained on their examples."""

    def __init__(
        self,
        specs: Sequence[IntentSpec],
        threshold: float,
        embedder: Embedder | None = None,
        weights: Path | None = None,
    ) -> None:
        self.specs = tuple(specs)
        self.threshold = threshold
        self.weights = weights
        self._embedder = embedder
        self._owners = [i for i, spec in enumerate(self.specs) for _ in spec.examples]
        self._texts = [e for spec in self.specs for e in spec.examples]

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    @property
    def key(self) -> str:
        """The digest the shipped weights must carry to be used for these examples."""
        examples = [(spec.name, spec.examples) for spec in self.specs]
        return weights_key(examples, VERSION, self.embedder.name)

    @functools.cached_property
    def features(self) -> Features:
        """The columns the classifier reads, drawn from the examples."""
        return Features(self._texts, self.embedder)

    @functools.cached_property
    def classifier(self) -> Softmax:
        """The trained classifier: the shipped weights when they fit, else trained now."""
        shape = (self.features.width, len(self.specs))
        return fitted(self.weights, self.key, shape, self._example_features, self._owners)

    def trained(self) -> Softmax:
        """A classifier trained on the examples now, whatever weights are shipped."""
        return train(self._example_features(), self._owners, len(self.specs))

    def _example_features(self) -> Vectors:
        return self.features(self._texts)

    def ranked(self, text: str, limit: int = 5) -> list[tuple[IntentSpec, float]]:
        """The ``limit`` most probable intents for ``text``, best first, with probabilities."""
        import numpy as np

        if not self._owners or not text.strip():
            return []
        probabilities = self.classifier.probabilities(self.features([text]))[0]
        order = np.argsort(-probabilities)[:limit]
        return [(self.specs[int(i)], float(probabilities[i])) for i in order]

    def match(self, text: str) -> Match | None:
        """The best intent for ``text``, or None when its probability is below the threshold."""
        ranked = self.ranked(text)
        if not ranked or ranked[0][1] < self.threshold:
            return None
        (best, score), second = ranked[0], ranked[1] if len(ranked) > 1 else (None, 0.0)
        return Match(best, score, second[0], second[1], tuple(ranked))


@functools.cache
def matcher_for(profile_folder: Path) -> IntentMatcher | None:
    """The matcher for a profile folder, or None when it has no intents.toml."""
    path = profile_folder / "intents.toml"
    if not path.is_file():
        return None
    specs, threshold = read_intents(path)
    return IntentMatcher(specs, threshold, weights=profile_folder / WEIGHTS_FILE)
