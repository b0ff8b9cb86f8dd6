"""What ``helpline tickets`` prints: text customers wrote reads in the order it was written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpline.store import Store

NAME = "Ana \u202eLima"
ISSUE = "Refund \u202efor order\u202c 17, \u2067invoice\u2069 fdp.exe"


def helpline(database: str, *args: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HELPLINE_", "XAI_"))}
    env = {**clean, "HELPLINE_DATABASE_URL": database, "NO_COLOR": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "helpline.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_bidi_controls_in_tickets_are_printed_as_their_codes(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'helpline.db'}"
    store = Store.open(database)
    store.tickets.create(NAME, ISSUE)
    store.close()
    shown = "Refund [U+202E]for order[U+202C] 17, [U+2067]invoice[U+2069] fdp.exe"
    for printed in (
        helpline(database, "tickets", "list"),
        helpline(database, "tickets", "show", "1"),
    ):
        assert "Ana [U+202E]Lima" in printed
        assert shown in printed
        assert not any(control in printed for control in "\u202e\u202c\u2067\u2069")
    # Scripts get the ticket as stored.
    listed = json.loads(helpline(database, "tickets", "list", "--json"))
    (ticket,) = listed["tickets"] if isinstance(listed, dict) else listed
    assert (ticket["name"], ticket["issue"]) == (NAME, ISSUE)
