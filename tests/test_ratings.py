"""Customer ratings: stored per conversation, given over HTTP with the customer's token, on
SQLite and PostgreSQL."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpline.assistant import Assistant
from helpline.chat_rating import RatingPrompt
from helpline.config import Settings
from helpline.models.scripted import ScriptedModel
from helpline.server import create_app
from helpline.server.testing import LiveServer
from helpline.store import ConversationGone, Store

ADMIN = "ratings-admin-key"


def test_a_new_rating_replaces_the_last_one(store: Store) -> None:
    conversation = store.conversations.create(messages=[{"role": "user", "content": "hi"}])
    store.ratings.rate(conversation, 2, "slow")
    store.ratings.rate(conversation, 5, "")

    rating = store.ratings.get(conversation)
    assert rating is not None
    assert (rating.score, rating.comment) == (5, None)
    assert [r.score for r in store.ratings.recent()] == [5]


def test_a_rating_is_from_1_to_5_and_needs_its_conversation(store: Store) -> None:
    conversation = store.conversations.create()
    for score in (0, 6):
        with pytest.raises(ValueError, match="from 1 to 5"):
            store.ratings.rate(conversation, score)
    with pytest.raises(ConversationGone):
        store.ratings.rate("no-such-conversation", 4)


def test_a_deleted_conversation_takes_its_rating_with_it(store: Store) -> None:
    conversation = store.conversations.create(messages=[{"role": "user", "content": "hi"}])
    store.ratings.rate(conversation, 1, "my words")
    assert store.conversations.delete(conversation)
    assert store.ratings.get(conversation) is None
    assert store.ratings.recent() == []


@pytest.fixture
def server(store: Store) -> Iterator[LiveServer]:
    assistant = Assistant(ScriptedModel(), store, [], "prompt")
    with LiveServer(create_app(assistant, Settings(admin_key=ADMIN))) as live:
        yield live


def _start(server: LiveServer) -> tuple[str, str]:
    body = httpx.post(server.url + "/api/conversations").json()
    return body["id"], body["token"]


def test_the_customer_rates_their_conversation(server: LiveServer, store: Store) -> None:
    conversation, token = _start(server)
    url = f"{server.url}/api/conversations/{conversation}/rating"
    customer = {"Authorization": f"Bearer {token}"}

    response = httpx.post(url, json={"score": 4, "comment": "  quick and kind  "}, headers=customer)
    assert response.status_code == 201, response.text
    assert response.json()["score"] == 4 and response.json()["comment"] == "quick and kind"
    again = httpx.post(url, json={"score": 5}, headers=customer)
    assert again.status_code == 201

    rating = store.ratings.get(conversation)
    assert rating is not None and (rating.score, rating.comment) == (5, None)

    stats = httpx.get(server.url + "/api/stats", headers={"Authorization": f"Bearer {ADMIN}"})
    assert stats.json()["recent_ratings"][0]["conversation_id"] == conversation


BAD_RATINGS: list[dict[str, object]] = [
    {"score": 0},
    {"score": 6},
    {"score": "5"},
    {"score": 4.5},
    {},
    {"score": 3, "stars": 3},
    {"score": 3, "comment": "x" * 2001},
]


def test_a_bad_rating_is_a_clear_4xx(server: LiveServer, store: Store) -> None:
    conversation, token = _start(server)
    for body in BAD_RATINGS:
        response = httpx.post(
            f"{server.url}/api/conversations/{conversation}/rating",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 422, (body, response.text)
        message = response.json()["error"]["message"]
        assert any(field in message for field in ("score", "comment", "stars")), message
    assert store.ratings.get(conversation) is None


def test_only_the_conversations_customer_rates_it(server: LiveServer) -> None:
    conversation, token = _start(server)
    _other, other_token = _start(server)
    url = f"{server.url}/api/conversations/{conversation}/rating"

    assert httpx.post(url, json={"score": 5}).status_code == 401
    wrong = httpx.post(url, json={"score": 1}, headers={"Authorization": f"Bearer {other_token}"})
    assert wrong.status_code == 403
    agent = httpx.post(url, json={"score": 5}, headers={"Authorization": f"Bearer {ADMIN}"})
    assert agent.status_code == 403 and "customer" in agent.json()["error"]["message"]
    unknown = httpx.post(
        f"{server.url}/api/conversations/nope/rating",
        json={"score": 5},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert unknown.status_code == 403  # the same answer as a wrong token: ids are not probed


def _chat(database: str, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELPLINE_", "XAI_"))}
    return subprocess.run(
        [sys.executable, "-m", "helpline.cli", "chat", "--database-url", database, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**env, "NO_COLOR": "1"},
        timeout=60,
    )


def test_a_script_rates_the_chat_on_the_lines_after_exit(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'chat.db'}"
    rated = _chat(database, "I can't log in\nOmar\nexit\n4\nQuick help\n")
    assert rated.returncode == 0, rated.stderr
    assert "Thanks for rating this chat 4 of 5." in rated.stdout
    assert "How did we do" not in rated.stdout  # a pipe is never asked

    silent = _chat(database, "hi\nexit\n")
    assert silent.returncode == 0 and "rating" not in silent.stdout.lower()

    store = Store.open(database)
    try:
        assert [(r.score, r.comment) for r in store.ratings.recent()] == [(4, "Quick help")]
    finally:
        store.close()


def test_the_terminal_asks_for_a_rating_after_goodbye(sqlite_store: Store) -> None:
    conversation = sqlite_store.conversations.create()
    answers = iter(["5", "  lovely  "])
    asked: list[str] = []

    def read(prompt: str) -> str | None:
        asked.append(prompt)
        return next(answers, None)

    out = io.StringIO()
    prompt = RatingPrompt(
        sqlite_store, conversation, interactive=True, json_output=False, read_line=read, out=out
    )
    prompt.after_turn("where is my order")
    assert asked == []
    prompt.after_turn("great, thanks, bye!")
    prompt.at_end()  # asked once only

    assert len(asked) == 2 and "1 to 5" in asked[0]
    assert "Thanks for rating this chat 5 of 5." in out.getvalue()
    rating = sqlite_store.ratings.get(conversation)
    assert rating is not None and (rating.score, rating.comment) == (5, "lovely")


def test_an_answer_that_is_not_a_rating_saves_none(sqlite_store: Store) -> None:
    conversation = sqlite_store.conversations.create()
    out = io.StringIO()
    prompt = RatingPrompt(
        sqlite_store,
        conversation,
        interactive=True,
        json_output=False,
        read_line=lambda _prompt: "ten",
        out=out,
    )
    prompt.after_turn("that's all")
    assert "not a rating" in out.getvalue()
    assert sqlite_store.ratings.get(conversation) is None
