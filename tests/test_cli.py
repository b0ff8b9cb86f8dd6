"""The ``helpline`` command end to end: a real subprocess, a real fake model server over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI, text_reply, tool_call_reply


@pytest.fixture
def env(tmp_path: Path, fake_openai: FakeOpenAI) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HELPLINE_", "XAI_"))}
    return {
        **clean,
        "HELPLINE_BASE_URL": fake_openai.base_url,
        "HELPLINE_API_KEY": "test-key",
        "HELPLINE_MODEL": "fake-model",
        "HELPLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "NO_COLOR": "1",
    }


def helpline(
    env: dict[str, str], *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helpline.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def _seed_script(fake_openai: FakeOpenAI) -> None:
    """The seed conversation: a login problem, the name, a ticket, a confirmation."""

    def confirm(body: dict[str, Any]) -> Any:
        ticket = body["messages"][-1]["content"]
        return text_reply(f"Thanks Omar! {ticket.split(' (')[0]} is on its way to our team.")

    fake_openai.script(
        text_reply("I'm sorry you can't log in. Could you tell me your name?"),
        tool_call_reply(
            [("call_omar", "create_customer_ticket", '{"name": "Omar", "issue": "Cannot log in"}')],
            shape="openai",
        ),
        confirm,
    )


def test_seed_conversation_through_chat_and_transcript(
    env: dict[str, str], fake_openai: FakeOpenAI
) -> None:
    _seed_script(fake_openai)
    chat = helpline(env, "chat", stdin="I can't log in\nOmar\nexit\n")
    assert chat.returncode == 0, chat.stderr
    assert "Could you tell me your name?" in chat.stdout
    assert "Thanks Omar! Ticket #1 created for Omar is on its way" in chat.stdout
    assert "\x1b[" not in chat.stdout  # no colour codes in a pipe
    assert "Resume with: helpline chat --conversation" in chat.stderr

    listing = json.loads(helpline(env, "tickets", "list", "--json").stdout)
    assert [(t["id"], t["name"], t["issue"], t["status"]) for t in listing] == [
        (1, "Omar", "Cannot log in", "open")
    ]
    transcript = json.loads(helpline(env, "transcript", "--json").stdout)["messages"]
    assert [m["role"] for m in transcript] == [
        "system", "user", "assistant", "user", "assistant", "tool", "assistant",
    ]  # fmt: skip
    assert transcript[4]["tool_calls"][0]["function"]["name"] == "create_customer_ticket"
    assert transcript[5] == {
        "role": "tool",
        "tool_call_id": "call_omar",
        "content": transcript[5]["content"],
    }
    # The transcript is exactly what the model was sent last (plus its answer).
    assert fake_openai.requests[-1].body["messages"] == transcript[:-1]


def test_resume_a_conversation(env: dict[str, str], fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text_reply("Hello!"), text_reply("Welcome back."))
    first = helpline(env, "chat", "--json", stdin="hi\n")
    events = [json.loads(line) for line in first.stdout.splitlines()]
    assert [e["event"] for e in events][-1] == "done"
    conversation_id = first.stderr.split("conversation ")[1].split()[0]
    second = helpline(env, "chat", "--conversation", conversation_id, stdin="again\n")
    assert "Welcome back." in second.stdout
    sent = fake_openai.requests[-1].body["messages"]
    assert [m.get("content") for m in sent[1:]] == ["hi", "Hello!", "again"]


def test_unknown_conversation_is_a_clear_error(env: dict[str, str]) -> None:
    result = helpline(env, "chat", "--conversation", "nope", stdin="hi\n")
    assert result.returncode == 1
    assert "There is no conversation 'nope'" in result.stderr


def test_model_outage_is_reported_and_the_message_kept(
    env: dict[str, str], fake_openai: FakeOpenAI
) -> None:
    from helpline.assistant import MODEL_DOWN_REPLY
    from tests.fake_openai import error_reply

    fake_openai.script(*[error_reply(401, "bad key")])
    result = helpline(env, "chat", stdin="where is my order?\n")
    assert "HTTP 401" in result.stdout and "HELPLINE_API_KEY" in result.stdout
    transcript = json.loads(helpline(env, "transcript", "--json").stdout)["messages"]
    assert transcript[-2:] == [
        {"role": "user", "content": "where is my order?"},
        {"role": "assistant", "content": MODEL_DOWN_REPLY},  # the apology, as stored
    ]


def test_tickets_update_and_show(env: dict[str, str], fake_openai: FakeOpenAI) -> None:
    _seed_script(fake_openai)
    helpline(env, "chat", stdin="I can't log in\nOmar\n")
    updated = helpline(env, "tickets", "update", "1", "--status", "resolved")
    assert updated.stdout.strip() == "Ticket #1 is now resolved."
    shown = json.loads(helpline(env, "tickets", "show", "1", "--json").stdout)
    assert shown["status"] == "resolved" and len(shown["messages"]) == 7
    bad = helpline(env, "tickets", "update", "1", "--status", "done")
    assert bad.returncode == 1 and "unknown status 'done'" in bad.stderr
    missing = helpline(env, "tickets", "show", "99")
    assert missing.returncode == 1 and "There is no ticket #99" in missing.stderr


def test_doctor_reports_backend_and_database(env: dict[str, str], fake_openai: FakeOpenAI) -> None:
    result = helpline(env, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["backend"]["detail"] == f"openai-compatible: fake-model at {fake_openai.base_url}"
    assert checks["endpoint"]["ok"] and checks["database"]["ok"]
    down = helpline({**env, "HELPLINE_BASE_URL": "http://127.0.0.1:9/v1"}, "doctor")
    assert down.returncode == 1 and "did not answer" in down.stdout


def test_receipt_reads_a_photo_offline(env: dict[str, str]) -> None:
    from tests.conftest import SHOP_RECEIPT

    result = helpline(env, "receipt", str(SHOP_RECEIPT), "--json")
    assert result.returncode == 0, result.stderr
    receipt = json.loads(result.stdout)
    assert (receipt["date"], receipt["currency"], receipt["total_in_cents"]) == (
        "2018-12-25",
        "MYR",
        8090,
    )
    shown = helpline(env, "receipt", str(SHOP_RECEIPT))
    assert "Total: 80.90 MYR" in shown.stdout


def test_receipt_errors_say_what_to_do(env: dict[str, str], tmp_path: Path) -> None:
    missing = helpline(env, "receipt", str(tmp_path / "nope.jpg"))
    assert missing.returncode == 1 and "Error:" in missing.stderr and "nope.jpg" in missing.stderr
    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    refused = helpline(env, "receipt", str(not_image))
    assert refused.returncode == 1 and "Error:" in refused.stderr
    private = helpline(env, "receipt", "http://127.0.0.1:9/receipt.jpg")
    assert private.returncode == 1 and "public link" in private.stderr


def test_serve_with_two_workers_answers_and_sums_metrics_over_both(
    env: dict[str, str], tmp_path: Path
) -> None:
    import socket
    import time

    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    offline = {k: v for k, v in env.items() if not k.startswith("HELPLINE_BASE_URL")}
    offline["HELPLINE_ADMIN_KEY"] = "admin-secret"
    shared = tmp_path / "metrics"
    shared.mkdir()
    offline["PROMETHEUS_MULTIPROC_DIR"] = str(shared)  # an operator's own folder is used
    server = subprocess.Popen(
        [sys.executable, "-m", "helpline.cli", "serve", "--port", str(port), "--workers", "2"],
        env=offline,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        answered = 0
        for _ in range(8):  # the workers share the port: the turns land on either
            created = httpx.post(url + "/api/conversations").json()
            response = httpx.post(
                f"{url}/api/conversations/{created['id']}/messages",
                headers={"Authorization": f"Bearer {created['token']}"},
                json={"text": "hello"},
                timeout=30,
            )
            answered += "event: done" in response.text
        assert answered == 8
        admin = {"Authorization": "Bearer admin-secret"}
        for _ in range(8):  # every scrape, whichever worker answers it, counts all turns
            text = httpx.get(url + "/metrics", headers=admin).text
            turns = [
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "helpline_turns_total"
                and sample.labels == {"outcome": "answered"}
            ]
            assert turns == [8.0], text
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert list(shared.glob("counter_*.db"))


def test_an_agent_replies_in_a_tickets_chat_and_hands_it_back(
    env: dict[str, str], fake_openai: FakeOpenAI
) -> None:
    _seed_script(fake_openai)
    assert helpline(env, "chat", stdin="I can't log in\nOmar\nexit\n").returncode == 0
    replied = helpline(env, "tickets", "reply", "1", "Hi Omar, Ana here: I reset it.", "--json")
    assert replied.returncode == 0, replied.stderr
    transcript = json.loads(helpline(env, "transcript", "--json").stdout)["messages"]
    assert transcript[-1] == {
        "role": "assistant",
        "name": "agent",
        "content": "Hi Omar, Ana here: I reset it.",
    }
    assert "assistant (agent)" in helpline(env, "tickets", "show", "1").stdout
    back = json.loads(helpline(env, "tickets", "hand-back", "1", "--json").stdout)
    assert back["status"] == "active"
    missing = helpline(env, "tickets", "reply", "99", "hello")
    assert missing.returncode == 1 and "There is no ticket #99" in missing.stderr
    empty = helpline(env, "tickets", "reply", "1", "   ")
    assert empty.returncode == 1 and "The reply is empty" in empty.stderr


def test_a_conversation_is_deleted_on_request(env: dict[str, str], fake_openai: FakeOpenAI) -> None:
    _seed_script(fake_openai)
    assert helpline(env, "chat", stdin="I can't log in\nOmar\nexit\n").returncode == 0
    conversation = json.loads(helpline(env, "tickets", "show", "1", "--json").stdout)[
        "conversation_id"
    ]
    deleted = helpline(env, "conversations", "delete", conversation, "--json")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"deleted": conversation}
    ticket = json.loads(helpline(env, "tickets", "show", "1", "--json").stdout)
    assert (ticket["name"], ticket["conversation_id"], ticket["messages"]) == (
        "Deleted customer",
        None,
        [],
    )
    again = helpline(env, "conversations", "delete", conversation)
    assert again.returncode == 1 and "There is no conversation" in again.stderr
