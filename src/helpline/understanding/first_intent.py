"""The intent of a conversation's first customer line, in the profile's own taxonomy.

Whichever model answers, the line is matched by the profile's intent classifier
(``intents.toml``), loaded on first use and kept for the process. A classifier that can't
load or match is logged and nothing is recorded: the turn goes on regardless.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from helpline.messages import TextPart, UserMessage
from helpline.understanding.intents import matcher_for

_log = logging.getLogger("helpline")


class FirstIntents:
    """Names the intent of a customer's line with the classifier of the profile in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._broken = False

    def of(self, message: UserMessage) -> str | None:
        """The matched intent's name; ``None`` when nothing matches or the classifier fails."""
        text = _text(message)
        if not text or self._broken:
            return None
        try:
            with self._lock:  # one line at a time: the classifier loads once
                matcher = matcher_for(self.folder)
                found = matcher.match(text) if matcher is not None else None
        except Exception:
            self._broken = True
            _log.exception(
                "The intent classifier of %s failed; conversations' intents are not recorded "
                "until Helpline restarts",
                self.folder,
            )
            return None
        return found.intent.name if found is not None else None


def _text(message: UserMessage) -> str:
    if isinstance(message.content, str):
        return message.content.strip()
    return " ".join(p.text for p in message.content if isinstance(p, TextPart)).strip()
