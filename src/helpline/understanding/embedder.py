"""Sentence embeddings that run offline: the seam behind which the model can be swapped.

The default is WordLlama's 256-d static token vectors (a 16 MB table shipped in its wheel),
read straight from the package folder with ``safetensors`` and ``tokenizers``: importing
``wordllama`` itself would pull in pydantic and requests, and its loader looks for the
tokenizer in the wrong folder and then tries to download it. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns lines into unit-length vectors whose dot product is their similarity."""

    name: str

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit row per text."""
        ...


class WordLlamaEmbedder:
    """WordLlama ``l2_supercat`` 256-d: the mean of a line's token vectors, normalised."""

    name = "wordllama-l2_supercat-256"

    def __init__(self) -> None:
        spec = importlib.util.find_spec("wordllama")
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(
                "wordllama is not installed; run `pip install -e .` to install Helpline's dependencies."
            )
        self._folder = Path(spec.origin).parent

    @functools.cached_property
    def _table(self) -> npt.NDArray[np.float32]:
        from safetensors.numpy import load_file

        weights = self._folder / "weights" / "l2_supercat_256.safetensors"
        return load_file(str(weights))["embedding.weight"]

    @functools.cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        return Tokenizer.from_file(
            str(self._folder / "tokenizers" / "l2_supercat_tokenizer_config.json")
        )

    def embed(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        table = self._table
        rows = [
            table[e.ids or [0]].astype(np.float32).mean(axis=0)
            for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        ]
        matrix = np.stack(rows) if rows else np.zeros((0, table.shape[1]), np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return (matrix / np.maximum(norms, 1e-9)).astype(np.float32)


@functools.cache
def default_embedder() -> Embedder:
    """The embedder the offline assistant uses, loaded once per process."""
    return WordLlamaEmbedder()
