"""Find the images a message shares: http(s) links, stored ``image://ID`` references, files."""

from __future__ import annotations

import itertools
import re

from helpline.images.local import is_local_file

_EXTENSION = r"\.(?:jpe?g|png|webp|gif|bmp|tiff?|hei[cf]|avif)(?![\w])"
_URL_PATTERN = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.IGNORECASE)
_STORED_PATTERN = re.compile(r"\bimage://[A-Za-z0-9_-]+")
_QUOTED_PATTERN = re.compile(r"([\"'])([^\"'\n]+?" + _EXTENSION + r")\1", re.IGNORECASE)
_ANCHORED_START = re.compile(r"(?<![\w/.~\\-])(?:~[\w.-]*/|\.{1,2}/|/)")
_EXTENSION_END = re.compile(_EXTENSION, re.IGNORECASE)
_BARE_PATTERN = re.compile(r"(?<![\w/.~\\-])[\w.-]+(?:/[\w.-]+)*" + _EXTENSION, re.IGNORECASE)
_MAX_WORDS_BEFORE_BARE_NAME = 4
_MAX_CANDIDATES_PER_PATH = 8
_MAX_PATH_LENGTH = 4096
_BRACKETS = {")": "(", "]": "[", "}": "{"}


def find_image_references(text: str, *, local_files_allowed: bool) -> list[str]:
    """Images a message shares, in order: http(s) links, ``image://ID``, and existing local files.

    Every http(s) link counts (receipt links often have no file extension); trailing
    punctuation and unbalanced closing brackets are not part of a link. Local files are only
    looked for when allowed (the terminal), and only image files that exist are returned,
    written as in the message without quotes.
    """
    found: list[tuple[int, int, str]] = []
    for match in _URL_PATTERN.finditer(text):
        link = _trim_link(match.group())
        found.append((match.start(), match.start() + len(link), link))
    found.extend((m.start(), m.end(), m.group()) for m in _STORED_PATTERN.finditer(text))
    if local_files_allowed:
        found.extend(_local_references(text, [(start, end) for start, end, _ in found]))
    found.sort()
    return list(dict.fromkeys(reference for _, _, reference in found))


def _trim_link(link: str) -> str:
    """Drop sentence punctuation and unbalanced closing brackets that end a link in prose."""
    while link and _ends_outside_link(link):
        link = link[:-1]
    return link


def _ends_outside_link(link: str) -> bool:
    last = link[-1]
    if last in ".,;:!?'\"":
        return True
    opener = _BRACKETS.get(last)
    return opener is not None and link.count(last) > link.count(opener)


def _local_references(text: str, taken: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """Existing image files named in `text` outside the `taken` spans."""
    found: list[tuple[int, int, str]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    def add(start: int, end: int, reference: str) -> None:
        found.append((start, end, reference))
        taken.append((start, end))

    for match in _QUOTED_PATTERN.finditer(text):
        if free(match.start(), match.end()) and is_local_file(match.group(2)):
            add(match.start(), match.end(), match.group(2))
    for match in _ANCHORED_START.finditer(text):
        if not free(match.start(), match.end()):
            continue
        line_end = text.find("\n", match.start())
        line_end = len(text) if line_end == -1 else line_end
        limit = min(line_end, match.start() + _MAX_PATH_LENGTH)
        ends = _EXTENSION_END.finditer(text, match.start(), limit)
        for end in itertools.islice(ends, _MAX_CANDIDATES_PER_PATH):
            candidate = text[match.start() : end.end()]
            if free(match.start(), end.end()) and is_local_file(candidate):
                add(match.start(), end.end(), candidate)
                break
    for match in _BARE_PATTERN.finditer(text):
        for start in reversed(_word_starts_before(text, match.start())):  # longest name first
            if free(start, match.end()) and is_local_file(text[start : match.end()]):
                add(start, match.end(), text[start : match.end()])
                break
    return found


def _word_starts_before(text: str, start: int) -> list[int]:
    """`start` and where the few words before it on its line begin: file names hold spaces."""
    line_start = text.rfind("\n", 0, start) + 1
    starts = [start]
    while len(starts) <= _MAX_WORDS_BEFORE_BARE_NAME and starts[-1] > line_start:
        space = text.rfind(" ", line_start, starts[-1] - 1)
        starts.append(line_start if space == -1 else space + 1)
    return starts
