"""The offline assistant end to end: ``helpline chat`` with no model configured, real store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def _helpline(
    tmp_path: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HELPLINE_", "XAI_"))}
    clean |= {"HELPLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'offline.db'}", "NO_COLOR": "1"}
    clean |= env or {}
    return subprocess.run(
        [sys.executable, "-m", "helpline.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=clean,
        cwd=tmp_path,
        timeout=90,
    )


def test_seed_conversation_offline(tmp_path: Path) -> None:
    chat = _helpline(tmp_path, "chat", stdin="Hi, I can't log in to my account\nOmar\nexit\n")
    assert chat.returncode == 0, chat.stderr
    assert "offline assistant" in chat.stdout
    assert "Could you tell me your name so I can file a ticket?" in chat.stdout
    assert "I've filed ticket #1 about your login problem" in chat.stdout

    tickets = json.loads(_helpline(tmp_path, "tickets", "list", "--json").stdout)
    assert [(t["id"], t["name"], t["issue"]) for t in tickets] == [
        (1, "Omar", "Login problem: I can't log in to my account.")
    ]
    transcript = json.loads(_helpline(tmp_path, "transcript", "--json").stdout)["messages"]
    call = transcript[4]["tool_calls"][0]
    assert call["function"]["name"] == "create_customer_ticket"
    assert transcript[5]["tool_call_id"] == call["id"]
    assert transcript[5]["content"].startswith("Ticket #1 created for Omar")


def test_a_shared_receipt_is_read_offline_and_its_total_quoted(tmp_path: Path) -> None:
    from helpline.messages import from_wire, unanswered_tool_calls
    from tests.conftest import SHOP_RECEIPT

    photo = tmp_path / "my receipt.jpg"  # a path with a space, as people's files have
    shutil.copy(SHOP_RECEIPT, photo)
    chat = _helpline(tmp_path, "chat", stdin=f"Here is my receipt {photo}\nthanks, bye\n")
    assert chat.returncode == 0, chat.stderr
    assert "80.90 MYR" in chat.stdout and "25 December 2018" in chat.stdout

    transcript = json.loads(_helpline(tmp_path, "transcript", "--json").stdout)["messages"]
    call = transcript[2]["tool_calls"][0]
    assert call["function"]["name"] == "analyze_receipt_image"
    assert json.loads(call["function"]["arguments"]) == {"image_url": str(photo)}
    assert json.loads(transcript[3]["content"])["total_in_cents"] == 8090
    assert not unanswered_tool_calls([from_wire(m) for m in transcript])


def test_the_second_business_runs_offline_on_its_own_profile(tmp_path: Path) -> None:
    """Voltcart (electronics, GBP) from its profile folder alone: its words, its order format."""
    from helpline.support.profile import DEFAULT_PROFILE

    env = {"HELPLINE_PROFILE": str(DEFAULT_PROFILE.parent / "electronics")}
    lines = "hello\nwhere is my order?\nmy laptop arrived with a cracked screen\nTom\nexit\n"
    chat = _helpline(tmp_path, "chat", stdin=lines, env=env)
    assert chat.returncode == 0, chat.stderr
    assert "returns, warranty" in chat.stdout
    assert "VC-204511" in chat.stdout and "DD-10234" not in chat.stdout
    assert "I've filed ticket #1 about your damaged item" in chat.stdout

    tickets = json.loads(_helpline(tmp_path, "tickets", "list", "--json", env=env).stdout)
    assert [(t["name"], t["issue"]) for t in tickets] == [
        ("Tom", "Damaged item: My laptop arrived with a cracked screen.")
    ]
