"""A server killed in the middle of an answer: a new one on the same database takes over
within seconds, on SQLite and PostgreSQL, and the transcript stays valid."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from helpline.assistant import Assistant
from helpline.events import TurnDone, TurnEvent
from helpline.messages import UserMessage, from_wire, unanswered_tool_calls
from helpline.models.base import Finish, ModelEvent, TextDelta
from helpline.models.scripted import ScriptedModel
from helpline.server.testing import parse_sse
from helpline.store import Store
from helpline.store.conversations import AGENT
from helpline.store.tables import Conversation
from tests.fake_openai import FakeOpenAI, StreamedReply, text_reply, tool_call_reply

ADMIN = "recovery-admin-key"
LONG_STORY = " ".join(f"word{i}" for i in range(400))
SLOW = 0.1  # seconds per streamed word: the long story takes 40 s, far longer than the test


def _model_reply(body: dict[str, Any]) -> StreamedReply:
    """File a ticket, then tell a long story slowly; a later message is answered at once."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return text_reply(LONG_STORY, delay=SLOW)
    if last["content"] == "my card was charged twice":
        arguments = '{"name": "Omar", "issue": "Charged twice"}'
        return tool_call_reply([("call_omar", "create_customer_ticket", arguments)])
    if last["content"] == "tell me a story":
        return text_reply(LONG_STORY, delay=SLOW)
    return text_reply("Yes, I'm here: your ticket is with the team.")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'helpline.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


class _Server:
    """``helpline serve`` as its own process, on a free port."""

    def __init__(self, env: dict[str, str]) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "helpline.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("helpline serve did not start within 30 s")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a turn still waiting: no need to let it end
                self.kill()


@pytest.fixture
def start_server(fake_openai: FakeOpenAI, database_url: str) -> Iterator[Any]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HELPLINE_", "XAI_"))}
    env = {
        **clean,
        "HELPLINE_BASE_URL": fake_openai.base_url,
        "HELPLINE_API_KEY": "test-key",
        "HELPLINE_MODEL": "fake-model",
        "HELPLINE_DATABASE_URL": database_url,
        "HELPLINE_ADMIN_KEY": ADMIN,
    }
    fake_openai.script(*[_model_reply] * 20)
    servers: list[_Server] = []

    def start() -> _Server:
        servers.append(_Server(env))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _new_conversation(server: _Server) -> tuple[str, str]:
    body = httpx.post(server.url + "/api/conversations").json()
    return body["id"], body["token"]


def _messages_url(server: _Server, conversation: str) -> str:
    return f"{server.url}/api/conversations/{conversation}/messages"


def _stream_until(
    client: httpx.Client, server: _Server, conversation: str, token: str, text: str, after: str
) -> httpx.Response:
    """Send ``text`` and read the answer until a text event follows an ``after`` event."""
    request = client.build_request(
        "POST",
        _messages_url(server, conversation),
        headers={"Authorization": f"Bearer {token}"},
        json={"text": text},
    )
    response = client.send(request, stream=True)
    assert response.status_code == 200
    seen_after = after == ""
    for line in response.iter_lines():
        seen_after = seen_after or line == f"event: {after}"
        if seen_after and line == "event: text":
            return response
    raise AssertionError(f"the answer ended before a text event after {after!r}")


def _stored(server: _Server, conversation: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/api/conversations/{conversation}",
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def test_a_server_killed_mid_answer_frees_its_conversations_within_seconds(
    start_server: Any,
) -> None:
    first = start_server()
    ticket, ticket_token = _new_conversation(first)
    story, story_token = _new_conversation(first)
    with httpx.Client(timeout=30) as client:
        # One answer is streaming after a tool round was stored, the other before any.
        _stream_until(
            client, first, ticket, ticket_token, "my card was charged twice", "tool_result"
        )
        _stream_until(client, first, story, story_token, "tell me a story", "")
        first.kill()

    second = start_server()
    restarted = time.monotonic()
    agent_reply: dict[str, Any] = {}

    def reply_as_agent() -> None:
        """The support team replies in the other conversation as soon as it is free."""
        while time.monotonic() - restarted < 30:
            response = httpx.post(
                f"{second.url}/api/conversations/{story}/replies",
                headers={"Authorization": f"Bearer {ADMIN}"},
                json={"text": "Ana here: sorry, the story got lost."},
            )
            if response.status_code != 409:
                agent_reply.update(status=response.status_code, after=time.monotonic() - restarted)
                return
            time.sleep(0.5)

    agent = threading.Thread(target=reply_as_agent)
    agent.start()
    answer = httpx.post(
        _messages_url(second, ticket),
        headers={"Authorization": f"Bearer {ticket_token}"},
        json={"text": "are you there?"},
        timeout=30,
    )
    answered_after = time.monotonic() - restarted
    agent.join()

    assert answer.status_code == 200, answer.text
    events = parse_sse(answer.text)
    assert events[-1].event == "done"
    assert "".join(e.data["delta"] for e in events if e.event == "text").startswith("Yes, I'm here")
    assert answered_after < 30
    assert agent_reply.get("status") == 201, agent_reply

    ticket_messages = _stored(second, ticket)
    assert [m["role"] for m in ticket_messages] == [
        "system", "user", "assistant", "tool", "user", "assistant",
    ]  # fmt: skip
    assert ticket_messages[2]["tool_calls"][0]["id"] == "call_omar"
    assert not unanswered_tool_calls([from_wire(m) for m in ticket_messages])
    story_messages = _stored(second, story)
    assert [m["role"] for m in story_messages] == ["system", "user", "assistant"]
    assert story_messages[-1]["name"] == AGENT  # the half-told story is simply absent
    assert not any("word1 " in str(m.get("content")) for m in ticket_messages + story_messages)


def test_a_running_turn_renews_its_lease_and_only_its_own(store: Store) -> None:
    conversation_id = store.conversations.create()
    hello = {"role": "user", "content": "hello"}
    short = timedelta(seconds=-1)  # already expired: only renewal keeps it
    assert store.conversations.begin_turn(conversation_id, "worker-a", short, hello)
    assert store.conversations.renew_turn(conversation_id, "worker-a", timedelta(minutes=1))
    assert store.conversations.begin_turn(conversation_id, "worker-b", short, hello) is None
    assert not store.conversations.renew_turn(conversation_id, "worker-b", timedelta(minutes=1))
    store.conversations.release_turn(conversation_id, "worker-a")
    assert not store.conversations.renew_turn(conversation_id, "worker-a", timedelta(minutes=1))


class _SlowEcho(ScriptedModel):
    """Echoes the customer's message after ``seconds``: a turn that outlasts a short lease."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    async def stream(
        self, messages: list[dict[str, Any]], *args: Any, **kwargs: Any
    ) -> AsyncIterator[ModelEvent]:  # type: ignore[override]
        await asyncio.sleep(self.seconds)
        yield TextDelta(f"echo {messages[-1]['content']}")
        yield Finish("stop")


async def _answer_of(assistant: Assistant, conversation_id: str, text: str) -> list[TurnEvent]:
    return [e async for e in assistant.run_turn(conversation_id, UserMessage(content=text))]


async def test_a_turn_longer_than_its_lease_keeps_it_from_other_workers(store: Store) -> None:
    workers = [Assistant(_SlowEcho(1.0), store, turn_lease_seconds=0.3) for _ in range(2)]
    conversation_id = workers[0].new_conversation()
    first = asyncio.create_task(_answer_of(workers[0], conversation_id, "a"))
    await asyncio.sleep(0.1)  # the first turn holds the lease
    await asyncio.gather(first, _answer_of(workers[1], conversation_id, "b"))
    contents = [m["content"] for m in store.conversations.messages(conversation_id)[1:]]
    assert contents == ["a", "echo a", "b", "echo b"]  # renewed, not taken over at 0.3 s


async def test_a_turn_that_lost_its_lease_says_so_in_the_log(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    assistant = Assistant(_SlowEcho(0.6), sqlite_store, turn_lease_seconds=0.3)
    conversation_id = assistant.new_conversation()
    turn = asyncio.create_task(_answer_of(assistant, conversation_id, "a"))
    await asyncio.sleep(0.05)
    with sqlite_store.engine.begin() as connection:  # another worker took the conversation
        connection.execute(update(Conversation).values(turn_holder="another-worker"))
    with caplog.at_level(logging.WARNING, logger="helpline"):
        events = await turn
    assert isinstance(events[-1], TurnDone)  # the turn still ends, and its answer is kept
    assert f"Conversation {conversation_id}: the turn lost its lease" in caplog.text
