"""``helpline chat`` asks the customer to rate the conversation (1 to 5, and an optional comment)
when they say goodbye or leave.

On a terminal it asks; in a pipe it asks nothing, but a script may give the rating on the lines
after the one that ends the chat (``exit``, then ``4``, then a comment).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import TextIO

from helpline.store import Store
from helpline.store.ratings import HIGHEST_SCORE, LOWEST_SCORE

GOODBYE = re.compile(
    r"\b(bye|goodbye|good bye|see you|cheers|that'?s all|that is all|that'?s it for now)\b",
    re.IGNORECASE,
)
"""A customer line that takes leave ("thanks, bye", "that's all")."""
_SCORE = re.compile(rf"^\s*([{LOWEST_SCORE}-{HIGHEST_SCORE}])\s*(?:/\s*{HIGHEST_SCORE})?\s*$")

ReadLine = Callable[[str], str | None]


def says_goodbye(line: str) -> bool:
    return bool(GOODBYE.search(line))


class RatingPrompt:
    """Asks once per session; a rating given is stored for the conversation."""

    def __init__(
        self,
        store: Store,
        conversation_id: str,
        *,
        interactive: bool,
        json_output: bool,
        read_line: ReadLine,
        out: TextIO | None = None,
    ) -> None:
        self._store = store
        self._conversation_id = conversation_id
        self._interactive = interactive
        self._json = json_output
        self._read = read_line
        self._out = out or sys.stdout
        self._asked = False
        self._talked = False

    def after_turn(self, line: str) -> None:
        """After the answer to ``line``: a customer at a terminal who said goodbye is asked."""
        self._talked = True
        if self._interactive and says_goodbye(line):
            self.ask()

    def at_end(self) -> None:
        """The chat is over: ask (terminal), or read a scripted rating (pipe), if the customer
        wrote in this session."""
        if self._talked:
            self.ask()

    def ask(self) -> None:
        if self._asked:
            return
        self._asked = True
        prompt = f"How did we do? Rate this chat from {LOWEST_SCORE} to {HIGHEST_SCORE} (Enter to skip): "
        answer = self._read(prompt if self._interactive else "")
        score = _score(answer)
        if score is None:
            if self._interactive and answer and answer.strip():
                self._say("That is not a rating from 1 to 5, so none was saved.")
            return
        comment = self._read(
            "Anything you'd like to add? (Enter to skip): " if self._interactive else ""
        )
        rating = self._store.ratings.rate(
            self._conversation_id, score, (comment or "").strip() or None
        )
        if self._json:
            event = {"event": "rating", "score": rating.score, "comment": rating.comment}
            self._out.write(json.dumps(event) + "\n")
        else:
            self._say(f"Thanks for rating this chat {rating.score} of {HIGHEST_SCORE}.")

    def _say(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()


def _score(answer: str | None) -> int | None:
    match = _SCORE.match(answer or "")
    return int(match.group(1)) if match else None


def line_reader(interactive: bool) -> ReadLine:
    """Reads an answer: with a prompt on a terminal, a plain line from a pipe (``None`` at the
    end of input)."""

    def read(prompt: str) -> str | None:
        try:
            if interactive:
                from rich.console import Console

                return Console().input(f"[bold]{prompt}[/]" if prompt else "")
            line = sys.stdin.readline()
            return line.rstrip("\n") if line else None
        except (EOFError, KeyboardInterrupt):
            return None

    return read
