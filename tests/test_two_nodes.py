"""Two ``helpline serve`` nodes on one PostgreSQL and one Redis, behind a reverse proxy:
what happens on one node reaches pages open on the other, limits hold across both, and a
node killed mid-answer loses nothing: the other answers the customer's next message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from helpline.assistant import TURN_LEASE_SECONDS
from helpline.server.testing import LiveServer, SSEEvent, aiter_sse, parse_sse
from tests.fake_openai import FakeOpenAI, text_reply
from tests.nodes import ADMIN, SHARED_REDIS, nodes, redis_prefix
from tests.reverse_proxy import ReverseProxy

A, B = {"X-Test-Node": "0"}, {"X-Test-Node": "1"}
AGENT = {"Authorization": f"Bearer {ADMIN}"}


def customer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def events_of(
    http: httpx.AsyncClient, conversation: str, token: str, node: dict[str, str]
) -> AsyncIterator[AsyncIterator[SSEEvent]]:
    path = f"/api/conversations/{conversation}/events"
    async with http.stream("GET", path, headers={**customer(token), **node}) as response:
        assert response.status_code == 200
        events = aiter_sse(response)
        assert (await anext(events)).event == "ready"
        yield events


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content)
    return str(content)


async def test_two_nodes_behind_a_proxy_share_events_limits_and_conversations(
    postgres_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(
        text_reply("Let me look that order up for you, one moment please. " * 4, delay=0.1),
        text_reply("Answered by the other node."),
    )
    env = {
        "HELPLINE_BASE_URL": fake_openai.base_url,
        "HELPLINE_API_KEY": "test",
        "HELPLINE_MODEL": "fake-model",
        "HELPLINE_REDIS_URL": SHARED_REDIS,
        "HELPLINE_REDIS_PREFIX": redis_prefix(),
        "HELPLINE_RATE_LIMITS": "conversation=3:0.01",
    }
    with nodes(tmp_path, postgres_url, env, 2) as (node_a, node_b):
        proxy = ReverseProxy([node_a.url, node_b.url])
        with LiveServer(proxy, lifespan="off", name="reverse proxy") as front:
            async with httpx.AsyncClient(base_url=front.url, timeout=20) as http:
                # An agent's reply through node A reaches the customer streaming from node B.
                created = (await http.post("/api/conversations", headers=A)).json()
                chat, token = created["id"], created["token"]
                async with events_of(http, chat, token, B) as events:
                    reply = await http.post(
                        f"/api/conversations/{chat}/replies",
                        json={"text": "Ana here, how can I help?"},
                        headers={**AGENT, **A},
                    )
                    assert reply.status_code == 201
                    sent = time.monotonic()
                    event = await asyncio.wait_for(anext(events), 2)
                    assert time.monotonic() - sent < 1
                assert (event.event, event.data["text"]) == (
                    "agent_reply",
                    "Ana here, how can I help?",
                )

                # One limit of 3 messages for the conversation, whichever node takes them.
                statuses = []
                for number, node in enumerate((A, B, A, B)):
                    sent_message = await http.post(
                        f"/api/conversations/{chat}/messages",
                        json={"text": f"message {number}"},
                        headers={**customer(token), **node},
                    )
                    statuses.append(sent_message.status_code)
                assert statuses == [200, 200, 200, 429]

                # Node A dies in the middle of an answer.
                created = (await http.post("/api/conversations", headers=A)).json()
                second, token = created["id"], created["token"]
                messages = f"/api/conversations/{second}/messages"
                async with http.stream(
                    "POST", messages, json={"text": "Where is my order?"},
                    headers={**customer(token), **A},
                ) as answer:  # fmt: skip
                    streamed = aiter_sse(answer)
                    assert (await anext(streamed)).event == "text"
                    node_a.kill()
                    with suppress(httpx.HTTPError):
                        async for _ in streamed:
                            pass
                killed = time.monotonic()
                while True:  # the customer sends again; the proxy finds node B
                    again = await http.post(
                        messages, json={"text": "Hello, are you there?"}, headers=customer(token)
                    )
                    if again.status_code != 409:  # node A's lease on the turn runs out
                        break
                    assert time.monotonic() - killed < TURN_LEASE_SECONDS + 5
                    await asyncio.sleep(0.25)
                answered_after = time.monotonic() - killed
                assert again.status_code == 200
                text = "".join(e.data["delta"] for e in parse_sse(again.text) if e.event == "text")
                assert text == "Answered by the other node."
                assert answered_after < TURN_LEASE_SECONDS + 3
                assert proxy.served_by[-1] == 1

                # Nothing the customer said is lost; the half answer is not stored.
                stored = await http.get(f"/api/conversations/{second}", headers=customer(token))
                said = [text_of(m) for m in stored.json()["messages"] if m["role"] == "user"]
                assert said == ["Where is my order?", "Hello, are you there?"]
                answers = [
                    text_of(m) for m in stored.json()["messages"] if m["role"] == "assistant"
                ]
                assert answers == ["Answered by the other node."]
                asked = fake_openai.requests[-1].body["messages"]
                assert [text_of(m) for m in asked if m["role"] == "user"] == said
