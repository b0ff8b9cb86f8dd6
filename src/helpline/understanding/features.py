"""What the intent classifier reads in a line: its meaning, its words and its spelling.

Three blocks, each scaled to unit length and laid side by side:

- the line's sentence embedding (meaning, for paraphrases: "money back" ~ "refund");
- TF-IDF of its words cut to five letters, and of its word pairs (the exact words a
  customer used: "PIN", "invoice", "unsubscribe");
- TF-IDF of the letter triples and quadruples inside each word (spelling, so typos and
  glued or clipped words still meet: "cancle", "pasword", "refnd").

The word and letter vocabularies, with their IDF weights, are built from the profile's
examples, so the same examples always give the same columns.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from helpline.understanding.embedder import Embedder, Vectors

# Bumped whenever the columns change, so classifier weights trained on older columns are
# recognised as stale.
VERSION = "words5+pairs,chars3-4,embedding:1"
_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """A line's words, lower case, apostrophes dropped ("don't" -> "dont")."""
    found = _WORD.findall(text.lower().replace("’", "'"))
    return [w.replace("'", "") for w in found if w.replace("'", "")]


def word_terms(text: str) -> list[str]:
    """A line's words cut to five letters, and its word pairs."""
    cut = [w[:5] for w in words(text)]
    return cut + [f"{a}_{b}" for a, b in itertools.pairwise(cut)]


def letter_terms(text: str) -> list[str]:
    """The letter triples and quadruples of each word, its edges marked by spaces."""
    out = []
    for word in words(text):
        padded = f" {word} "
        for n in (3, 4):
            out += [padded[i : i + n] for i in range(max(1, len(padded) - n + 1))]
    return out


class TfIdf:
    """Sublinear TF-IDF over a vocabulary drawn from ``documents``; rows of unit length."""

    def __init__(self, documents: Sequence[str], terms: Callable[[str], list[str]]) -> None:
        self._terms = terms
        counts = Counter(term for doc in documents for term in set(terms(doc)))
        self.columns = {term: i for i, term in enumerate(sorted(counts))}
        total = len(documents)
        self._idf = [math.log((1 + total) / (1 + counts[t])) + 1 for t in sorted(counts)]

    def __call__(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        matrix = np.zeros((len(texts), len(self.columns)), np.float32)
        for row, text in enumerate(texts):
            for term, count in Counter(self._terms(text)).items():
                column = self.columns.get(term)
                if column is not None:
                    matrix[row, column] = (1 + math.log(count)) * self._idf[column]
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.maximum(norms, 1e-9)


class Features:
    """Turns lines into the classifier's columns, given the profile's examples."""

    def __init__(self, examples: Sequence[str], embedder: Embedder) -> None:
        self.embedder = embedder
        self._words = TfIdf(examples, word_terms)
        self._letters = TfIdf(examples, letter_terms)

    @property
    def width(self) -> int:
        """How many columns a line gets."""
        size = int(self.embedder.embed([""]).shape[1])
        return size + len(self._words.columns) + len(self._letters.columns)

    def __call__(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        blocks = [self.embedder.embed(texts), self._words(texts), self._letters(texts)]
        return np.hstack(blocks).astype(np.float32)
