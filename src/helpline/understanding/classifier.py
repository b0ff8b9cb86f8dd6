"""A softmax (multinomial logistic regression) classifier over the intent features, numpy only.

Trained on the profile's examples, one class per intent. Its weights ship next to the
profile as ``intents.weights.npz``, keyed by a digest of the examples, the feature columns
and the embedding model; when the key does not match (the examples were edited) the
classifier is trained again in-process on first use, a few seconds, and a warning says how
to refresh the file: ``python -m helpline.understanding.train PROFILE_FOLDER``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from helpline.understanding.embedder import Vectors

log = logging.getLogger(__name__)

WEIGHTS_FILE = "intents.weights.npz"
# Chosen by cross-validation on the development lines (see bench/offline_understanding.py).
_ITERATIONS = 150
_L2 = 1e-4
_STEP = 0.05
# Logits are doubled when read (temperature 0.5): fitted by cross-validation on the
# development lines, it makes a probability of p right about p of the time.
_SHARPNESS = 2.0


def weights_key(examples: Sequence[tuple[str, Sequence[str]]], columns: str, model: str) -> str:
    """The digest that ties trained weights to their examples, columns and model."""
    body = json.dumps(
        {"examples": [[n, list(e)] for n, e in examples], "columns": columns, "model": model},
        ensure_ascii=False,
    )
    settings = f"{_ITERATIONS}:{_L2}:{_STEP}"
    return hashlib.sha256(f"{settings}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class Softmax:
    """Weights (features x classes) and biases; ``probabilities`` sums to 1 per row.

    ``sharpness`` scales the logits (1 while training; calibrated once trained).
    """

    weights: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float32]
    sharpness: float = _SHARPNESS

    def probabilities(self, features: Vectors) -> Vectors:
        import numpy as np

        logits = self.sharpness * (features @ self.weights.astype(np.float32) + self.bias)
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return (odds / odds.sum(axis=1, keepdims=True)).astype(np.float32)

    def save(self, path: Path, key: str) -> None:
        """Write the weights (half precision) with the key they were trained for."""
        import numpy as np

        with path.open("wb") as out:
            np.savez_compressed(
                out, key=np.array(key), weights=self.weights.astype(np.float16), bias=self.bias
            )

    @classmethod
    def load(cls, path: Path, key: str, shape: tuple[int, int]) -> Softmax | None:
        """The weights in ``path`` when they were trained for ``key`` and fit ``shape``."""
        import numpy as np

        try:
            with np.load(path) as data:
                if str(data["key"]) != key or data["weights"].shape != shape:
                    return None
                return cls(data["weights"], data["bias"].astype(np.float32))
        except (OSError, KeyError, ValueError):
            return None


def train(features: Vectors, labels: Sequence[int], classes: int) -> Softmax:
    """Fit the classifier: full-batch Adam on cross-entropy with a small L2 penalty."""
    import numpy as np

    rows, width = features.shape
    target = np.eye(classes, dtype=np.float32)[np.asarray(labels)]
    weights = np.zeros((width, classes), np.float32)
    bias = np.zeros(classes, np.float32)
    moments = [np.zeros_like(weights), np.zeros_like(bias)]
    squares = [np.zeros_like(weights), np.zeros_like(bias)]
    for step in range(1, _ITERATIONS + 1):
        error = (Softmax(weights, bias, 1.0).probabilities(features) - target) / rows
        grads = (features.T @ error + _L2 * weights, error.sum(axis=0))
        for param, grad, m, v in zip((weights, bias), grads, moments, squares, strict=True):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            param -= _STEP * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return Softmax(weights, bias)


def fitted(
    path: Path | None,
    key: str,
    shape: tuple[int, int],
    examples: Callable[[], Vectors],
    labels: Sequence[int],
) -> Softmax:
    """The shipped weights when they match ``key``; otherwise trained on ``examples()``."""
    if path is not None and path.is_file():
        loaded = Softmax.load(path, key, shape)
        if loaded is not None:
            return loaded
        log.warning(
            "%s is out of date with the intents' examples; training in memory. "
            "Refresh it with: python -m helpline.understanding.train %s",
            path,
            path.parent,
        )
    return train(examples(), labels, shape[1])
