"""The HTTP API against a real uvicorn server on 127.0.0.1, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, get_args

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from helpline.assistant import (
    BUSY_REPLY,
    GONE_REPLY,
    MODEL_DOWN_REPLY,
    NOT_SAVED_REPLY,
    WITH_AGENT_REPLY,
    Assistant,
)
from helpline.config import Settings
from helpline.models.base import ChatModel
from helpline.models.openai_compat import OpenAICompatModel
from helpline.models.scripted import ScriptedModel
from helpline.server import Rate, RateLimits, create_app
from helpline.server.routes_conversations import ConversationPatch
from helpline.server.routes_tickets import TicketStatus
from helpline.server.testing import LiveServer, SSEEvent, aiter_sse, parse_sse
from helpline.store import CONVERSATION_STATUSES, TICKET_STATUSES, Store
from helpline.support import create_customer_ticket
from tests.fake_openai import FakeOpenAI, error_reply, text_reply

ADMIN = "agent-secret-key"
PROMPT = "You are the test support desk."
StartServer = Callable[..., LiveServer]


@pytest.fixture
def start_server(store: Store) -> Iterator[StartServer]:
    """Start a live server around ``model``; every server started is stopped after the test."""
    servers: list[LiveServer] = []

    def start(
        model: ChatModel,
        *,
        admin_key: str | None = ADMIN,
        limits: RateLimits | None = None,
    ) -> LiveServer:
        assistant = Assistant(model, store, [create_customer_ticket], PROMPT)
        app = create_app(assistant, Settings(admin_key=admin_key), limits=limits)
        server = LiveServer(app)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def paced_model(fake: FakeOpenAI) -> OpenAICompatModel:
    return OpenAICompatModel(fake.base_url, "fake-model", "test", max_retries=0)


def new_conversation(server: LiveServer) -> tuple[str, str]:
    response = httpx.post(server.url + "/api/conversations")
    assert response.status_code == 201
    body = response.json()
    return body["id"], body["token"]


def send(server: LiveServer, conversation: str, token: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return httpx.post(
        f"{server.url}/api/conversations/{conversation}/messages",
        headers=headers,
        timeout=30,
        **kwargs,
    )


def events_of(response: httpx.Response) -> list[SSEEvent]:
    assert response.status_code == 200, response.text
    return parse_sse(response.text)


def assert_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert isinstance(message, str) and len(message) > 20
    return message


def png_bytes(size: tuple[int, int] = (64, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (250, 250, 240)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_new_conversation_gets_a_token_stored_only_as_its_hash(
    start_server: StartServer, store: Store
) -> None:
    server = start_server(ScriptedModel())
    conversation, token = new_conversation(server)
    info = store.conversations.get(conversation)
    assert info is not None
    assert info.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert store.conversations.messages(conversation) == [{"role": "system", "content": PROMPT}]


def test_answer_streams_as_text_events_then_done(start_server: StartServer, store: Store) -> None:
    server = start_server(ScriptedModel(ScriptedModel.text("Hello Omar, how can I help today?")))
    conversation, token = new_conversation(server)
    response = send(server, conversation, token, json={"text": "Hi, I'm Omar"})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    events = events_of(response)
    deltas = [e.data["delta"] for e in events if e.event == "text"]
    assert len(deltas) == 7
    assert "".join(deltas) == "Hello Omar, how can I help today?"
    assert events[-1].event == "done"
    assert events[-1].data["usage"]["completion_tokens"] == 7
    stored = store.conversations.messages(conversation)
    assert [m["role"] for m in stored] == ["system", "user", "assistant"]
    assert stored[1]["content"] == "Hi, I'm Omar"
    assert stored[2]["content"] == "Hello Omar, how can I help today?"

    shown = httpx.get(
        f"{server.url}/api/conversations/{conversation}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert shown["id"] == conversation and shown["status"] == "active"
    assert shown["messages"] == stored[1:]  # the customer never sees the system prompt


def test_a_model_outage_is_a_plain_error_event_and_the_message_is_kept(
    start_server: StartServer, store: Store, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(error_reply(401, "Incorrect API key provided: xai-****"))
    server = start_server(OpenAICompatModel(fake_openai.base_url, "grok-4", "wrong-key"))
    conversation, token = new_conversation(server)
    events = events_of(send(server, conversation, token, json={"text": "Where is my order?"}))
    assert [(e.event, e.data) for e in events] == [("error", {"message": MODEL_DOWN_REPLY})]
    stored = store.conversations.messages(conversation)
    assert stored[-2:] == [
        {"role": "user", "content": "Where is my order?"},
        {"role": "assistant", "content": MODEL_DOWN_REPLY},  # the apology the customer saw
    ]


def test_tool_call_turn_files_a_ticket(start_server: StartServer, store: Store) -> None:
    server = start_server(
        ScriptedModel(
            ScriptedModel.call("create_customer_ticket", name="Omar", issue="cannot log in"),
            ScriptedModel.text("Your ticket is filed."),
        )
    )
    conversation, token = new_conversation(server)
    events = events_of(send(server, conversation, token, json={"text": "Omar; I can't log in"}))
    assert [e.event for e in events] == [
        "tool_call",
        "tool_result",
        "text",
        "text",
        "text",
        "text",
        "done",
    ]
    call, result = events[0].data, events[1].data
    assert call["name"] == "create_customer_ticket"
    assert '"name": "Omar"' in call["arguments"]
    assert result["id"] == call["id"] and result["name"] == "create_customer_ticket"
    tickets = store.tickets.find()
    assert len(tickets) == 1
    assert tickets[0].conversation_id == conversation
    assert f"Ticket #{tickets[0].id} created for Omar" in result["content"]


def test_tools_say_what_customers_see_while_they_run(start_server: StartServer) -> None:
    server = start_server(ScriptedModel())
    response = httpx.get(server.url + "/api/tools")
    assert response.status_code == 200
    assert response.json() == {
        "tools": [
            {
                "name": "create_customer_ticket",
                "activity": "Creating a ticket",
                "done": "Ticket created",
            }
        ]
    }


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value in Prometheus text, 0 when it is not there yet."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_metrics_count_turns_first_tokens_tools_and_tokens(start_server: StartServer) -> None:
    server = start_server(
        ScriptedModel(
            ScriptedModel.call("create_customer_ticket", name="Omar", issue="cannot log in"),
            ScriptedModel.call("no_such_tool"),
            ScriptedModel.text("Your ticket is filed."),
        )
    )
    admin = {"Authorization": f"Bearer {ADMIN}"}

    def scrape() -> str:
        response = httpx.get(server.url + "/metrics", headers=admin)
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/plain"
        )
        return response.text

    before = scrape()
    conversation, token = new_conversation(server)
    events_of(send(server, conversation, token, json={"text": "Omar; I can't log in"}))
    after = scrape()

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("helpline_turns_total", outcome="answered") == 1
    assert grew("helpline_first_token_seconds_count") == 1
    assert grew("helpline_turn_seconds_count") == 1
    assert grew("helpline_tool_calls_total", tool="create_customer_ticket", outcome="ok") == 1
    assert grew("helpline_tool_calls_total", tool="unknown", outcome="error") == 1
    assert grew("helpline_tool_seconds_count", tool="create_customer_ticket") == 1
    assert grew("helpline_model_tokens_total", kind="completion") > 0
    assert metric(after, "helpline_turns_in_progress") == 0
    assert "no_such_tool" not in after  # names a model makes up don't become series
    assert httpx.get(server.url + "/metrics").status_code == 401
    wrong = {"Authorization": "Bearer not-the-key"}
    assert httpx.get(server.url + "/metrics", headers=wrong).status_code == 403


def test_a_message_that_cannot_be_stored_is_an_error_to_send_again(
    sqlite_store: Store,
) -> None:
    model = ScriptedModel(ScriptedModel.text("Hello!"))
    assistant = Assistant(model, sqlite_store, [], PROMPT, turn_wait_seconds=0.2)
    with LiveServer(create_app(assistant, Settings())) as server:
        conversation, token = new_conversation(server)
        # Another worker is answering this conversation: the message waits, then is refused.
        sqlite_store.conversations.begin_turn(
            conversation, "other-worker", timedelta(minutes=1), {"role": "user", "content": "1"}
        )
        busy = send(server, conversation, token, json={"text": "second"})
        assert assert_error(busy, 409) == BUSY_REPLY
        assert busy.headers["retry-after"] == "5"
        sqlite_store.conversations.release_turn(conversation, "other-worker")

        with sqlite_store.engine.begin() as connection:  # the database breaks
            connection.exec_driver_sql("ALTER TABLE messages RENAME TO messages_away")
        broken = send(server, conversation, token, json={"text": "third"})
        assert assert_error(broken, 503) == NOT_SAVED_REPLY
        assert broken.headers["retry-after"] == "5"
        with sqlite_store.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE messages_away RENAME TO messages")

        assert [
            e.event for e in events_of(send(server, conversation, token, json={"text": "again"}))
        ][-1] == "done"
    contents = [m["content"] for m in sqlite_store.conversations.messages(conversation)]
    assert contents == [PROMPT, "1", "again", "Hello!"]  # refused messages were never stored


def test_an_agent_deletes_a_conversation_at_the_customers_request(
    start_server: StartServer, store: Store
) -> None:
    server = start_server(
        ScriptedModel(ScriptedModel.text("Hello!"), ScriptedModel.text("Hello again!"))
    )
    conversation, token = new_conversation(server)
    url = f"{server.url}/api/conversations/{conversation}"
    customer = {"Authorization": f"Bearer {token}"}
    events_of(send(server, conversation, token, json={"text": "hi"}))

    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert_error(httpx.delete(url, headers=customer), 403)
    assert httpx.delete(url, headers=admin).status_code == 204
    assert store.conversations.messages(conversation) == []
    assert_error(httpx.get(url, headers=customer), 403)  # as for any id the token isn't for
    assert_error(httpx.delete(url, headers=admin), 404)

    # Deleted by another worker: this one still knows the customer, and refuses their message.
    conversation, token = new_conversation(server)
    events_of(send(server, conversation, token, json={"text": "hi"}))
    assert store.conversations.delete(conversation)
    refused = send(server, conversation, token, json={"text": "still there?"})
    assert assert_error(refused, 404) == GONE_REPLY
    assert "retry-after" not in refused.headers  # sending it again would not help
    assert store.conversations.messages(conversation) == []


def test_who_may_read_a_conversation(start_server: StartServer, store: Store) -> None:
    server = start_server(ScriptedModel())
    conversation, token = new_conversation(server)
    other, other_token = new_conversation(server)
    url = f"{server.url}/api/conversations/{conversation}"

    def get(authorization: str | None, target: str = url) -> httpx.Response:
        headers = {"Authorization": authorization} if authorization else {}
        return httpx.get(target, headers=headers)

    assert get(f"Bearer {token}").status_code == 200
    assert_error(get(None), 401)
    assert_error(get(f"Basic {token}"), 401)
    assert_error(get("Bearer not-a-token"), 401)
    assert_error(get(f"Bearer {other_token}"), 403)
    assert_error(get(f"Bearer {'A' * 43}"), 403)
    # A token never learns whether an id exists: unknown ids get the same 403.
    unknown = f"{server.url}/api/conversations/0123456789abcdef"
    assert_error(get(f"Bearer {token}", unknown), 403)
    assert_error(get(f"Bearer {ADMIN}", unknown), 404)
    as_agent = get(f"Bearer {ADMIN}").json()
    assert as_agent["messages"][0] == {"role": "system", "content": PROMPT}

    # Agents read but never write as the customer; another customer can't write either.
    assert_error(send(server, conversation, ADMIN, json={"text": "hi"}), 403)
    assert_error(send(server, conversation, other_token, json={"text": "hi"}), 403)
    assert len(store.conversations.messages(conversation)) == 1
    assert len(store.conversations.messages(other)) == 1


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ({"json": {"text": 42}}, 422),
        ({"json": {"text": None}}, 422),
        ({"json": ["hi"]}, 422),
        ({"json": {"text": ""}}, 422),
        ({"json": {"text": "   \n "}}, 422),
        ({"json": {"text": "x" * 4001}}, 422),
        ({"json": {"text": "receipt", "image_url": "file:///etc/passwd"}}, 422),
        ({"json": {"text": "receipt", "image_url": 7}}, 422),
        ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415),
        ({"data": {"text": ""}, "files": {"image": ("a.txt", b"plain text", "text/plain")}}, 415),
        ({"data": {"text": "hi"}, "files": {"image": ("a.png", b"", "image/png")}}, 422),
        (
            {"files": {"image": ("big.png", b"\x89PNG" + b"0" * (10 * 1024 * 1024), "image/png")}},
            413,
        ),
    ],
    ids=[
        "malformed-json",
        "text-not-string",
        "text-null",
        "body-not-object",
        "empty-text",
        "blank-text",
        "text-too-long",
        "image-url-not-http",
        "image-url-not-string",
        "not-json-or-form",
        "upload-not-an-image",
        "upload-empty",
        "upload-too-large",
    ],
)
def test_bad_input_is_a_4xx_and_nothing_is_stored(
    start_server: StartServer, store: Store, kwargs: dict[str, Any], status: int
) -> None:
    model = ScriptedModel()
    server = start_server(model)
    conversation, token = new_conversation(server)
    assert_error(send(server, conversation, token, **kwargs), status)
    assert len(store.conversations.messages(conversation)) == 1
    assert model.requests == []
    # The conversation still works afterwards.
    model.replies.append(ScriptedModel.text("Still here."))
    events = events_of(send(server, conversation, token, json={"text": "hello?"}))
    assert events[-1].event == "done"


def test_unknown_routes_ids_and_methods_get_the_error_shape(start_server: StartServer) -> None:
    server = start_server(ScriptedModel())
    _, token = new_conversation(server)
    assert_error(httpx.get(server.url + "/api/nothing-here"), 404)
    assert_error(httpx.delete(server.url + "/api/conversations"), 405)
    assert_error(send(server, "x" * 65, token, json={"text": "hi"}), 422)
    assert_error(send(server, "0123456789abcdef", token, json={"text": "hi"}), 403)


def test_uploaded_image_is_stored_and_referenced(start_server: StartServer, store: Store) -> None:
    model = ScriptedModel(ScriptedModel.text("Thanks, reading it."))
    server = start_server(model)
    conversation, token = new_conversation(server)
    png = png_bytes()
    response = send(
        server,
        conversation,
        token,
        data={"text": "Here is my receipt"},
        files={"image": ("receipt.png", png, "image/png")},
    )
    assert events_of(response)[-1].event == "done"
    user = store.conversations.messages(conversation)[1]
    text, reference_line = user["content"].split("\n\n")
    assert text == "Here is my receipt"
    assert reference_line.startswith("[Shared image: image://") and reference_line.endswith("]")
    image_id = reference_line.removeprefix("[Shared image: image://").removesuffix("]")
    record = store.images.get(image_id)
    assert record is not None
    assert (record.mime, record.data, record.conversation_id) == ("image/png", png, conversation)
    assert record.source == "upload:receipt.png"
    assert model.requests[0].messages[-1]["content"] == user["content"]

    image_url = f"{server.url}/api/conversations/{conversation}/images/{image_id}"
    shown = httpx.get(image_url, headers={"Authorization": f"Bearer {token}"})
    assert shown.status_code == 200 and shown.content == png
    assert shown.headers["content-type"] == "image/png"
    _, other_token = new_conversation(server)
    assert_error(httpx.get(image_url, headers={"Authorization": f"Bearer {other_token}"}), 403)


def test_image_link_is_appended_for_the_tool_to_fetch(
    start_server: StartServer, store: Store
) -> None:
    server = start_server(ScriptedModel(ScriptedModel.text("Looking.")))
    conversation, token = new_conversation(server)
    link = "https://example.com/receipts/42.jpg"
    events_of(send(server, conversation, token, json={"text": "my receipt", "image_url": link}))
    assert store.conversations.messages(conversation)[1]["content"] == (
        f"my receipt\n\n[Shared image: {link}]"
    )


async def test_answer_completes_and_is_stored_when_the_client_leaves(
    start_server: StartServer, store: Store, fake_openai: FakeOpenAI
) -> None:
    answer = "Sorry about that! I have filed everything and a person will follow up soon."
    fake_openai.script(text_reply(answer, delay=0.05))
    server = start_server(paced_model(fake_openai))
    conversation, token = new_conversation(server)
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream(
            "POST",
            f"{server.url}/api/conversations/{conversation}/messages",
            headers={"Authorization": f"Bearer {token}"},
            json={"text": "My order never came"},
        ) as response,
    ):
        first = await anext(aiter_sse(response))
        assert first == SSEEvent("text", {"delta": "Sorry"})
    # The client is gone; the turn must still finish and be stored.
    deadline = time.monotonic() + 10
    while len(store.conversations.messages(conversation)) < 3:
        assert time.monotonic() < deadline, "the abandoned turn was never stored"
        await asyncio.sleep(0.05)
    shown = httpx.get(
        f"{server.url}/api/conversations/{conversation}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]
    assert shown["messages"][1]["content"] == answer


async def test_two_messages_at_once_are_answered_one_after_the_other(
    start_server: StartServer, store: Store, fake_openai: FakeOpenAI
) -> None:
    def echo(body: dict[str, Any]) -> Any:
        return text_reply(f"You said: {body['messages'][-1]['content']}", delay=0.02)

    fake_openai.script(echo, echo)
    server = start_server(paced_model(fake_openai))
    conversation, token = new_conversation(server)

    async def post(client: httpx.AsyncClient, text: str) -> list[SSEEvent]:
        response = await client.post(
            f"{server.url}/api/conversations/{conversation}/messages",
            headers={"Authorization": f"Bearer {token}"},
            json={"text": text},
        )
        return events_of(response)

    async with httpx.AsyncClient(timeout=30) as client:
        first, second = await asyncio.gather(post(client, "first"), post(client, "second"))
    for events, text in ((first, "first"), (second, "second")):
        assert "".join(e.data["delta"] for e in events if e.event == "text") == f"You said: {text}"
    stored = store.conversations.messages(conversation)[1:]
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
    for user, reply in (stored[0:2], stored[2:4]):
        assert reply["content"] == f"You said: {user['content']}"
    # The second turn saw the whole first exchange.
    assert len(fake_openai.requests[1].body["messages"]) == 4


def test_rate_limits_answer_429_with_retry_after(start_server: StartServer, store: Store) -> None:
    limits = RateLimits(per_client=Rate(burst=5, per_second=0.01), per_conversation=Rate(2, 0.01))
    server = start_server(
        ScriptedModel(ScriptedModel.text("one"), ScriptedModel.text("two")), limits=limits
    )
    conversation, token = new_conversation(server)
    for text in ("a", "b"):
        assert events_of(send(server, conversation, token, json={"text": text}))[-1].event == "done"
    limited = send(server, conversation, token, json={"text": "c"})
    assert "messages in this conversation" in assert_error(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert [m["content"] for m in store.conversations.messages(conversation)[1:]] == [
        "a",
        "one",
        "b",
        "two",
    ]
    new_conversation(server)  # the fifth request from this address
    per_client = httpx.post(server.url + "/api/conversations")
    assert "from your address" in assert_error(per_client, 429)
    assert int(per_client.headers["retry-after"]) >= 1


def test_agents_list_read_and_update_tickets(start_server: StartServer, store: Store) -> None:
    server = start_server(ScriptedModel(ScriptedModel.text("Filed.")))
    conversation, token = new_conversation(server)
    events_of(send(server, conversation, token, json={"text": "Refund please"}))
    first, _ = store.tickets.create("Omar", "cannot log in", conversation_id=conversation)
    second, _ = store.tickets.create("Ana", "missing soda", category="refund", amount_cents=250)
    agent = {"Authorization": f"Bearer {ADMIN}"}
    tickets = f"{server.url}/api/tickets"

    assert_error(httpx.get(tickets), 401)
    assert_error(httpx.get(tickets, headers={"Authorization": f"Bearer {token}"}), 403)
    listed = httpx.get(tickets, headers=agent).json()["tickets"]
    assert [t["id"] for t in listed] == [second.id, first.id]
    assert listed[0]["amount_cents"] == 250 and listed[0]["category"] == "refund"

    detail = httpx.get(f"{tickets}/{first.id}", headers=agent).json()
    assert detail["name"] == "Omar" and detail["conversation_id"] == conversation
    assert [m["role"] for m in detail["messages"]] == ["system", "user", "assistant"]
    assert detail["conversation_status"] == "active"

    patched = httpx.patch(f"{tickets}/{first.id}", headers=agent, json={"status": "resolved"})
    assert patched.status_code == 200 and patched.json()["status"] == "resolved"
    resolved = httpx.get(tickets, headers=agent, params={"status": "resolved"}).json()["tickets"]
    assert [t["id"] for t in resolved] == [first.id]
    assert store.tickets.get(first.id).status == "resolved"  # type: ignore[union-attr]

    assert_error(httpx.patch(f"{tickets}/{first.id}", headers=agent, json={"status": "done"}), 422)
    assert_error(httpx.patch(f"{tickets}/{first.id}", headers=agent, content=b"{"), 422)
    assert_error(httpx.patch(f"{tickets}/999", headers=agent, json={"status": "open"}), 404)
    assert_error(httpx.get(f"{tickets}/abc", headers=agent), 422)
    assert_error(httpx.get(tickets, headers=agent, params={"status": "bogus"}), 422)
    assert store.tickets.get(first.id).status == "resolved"  # type: ignore[union-attr]


def test_agents_api_is_off_without_an_admin_key(start_server: StartServer) -> None:
    server = start_server(ScriptedModel(), admin_key=None)
    refused = httpx.get(server.url + "/api/tickets", headers={"Authorization": "Bearer anything"})
    assert "HELPLINE_ADMIN_KEY" in assert_error(refused, 503)


def test_health_pages_and_docs(start_server: StartServer, store: Store) -> None:
    server = start_server(ScriptedModel())
    health = httpx.get(server.url + "/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": store.engine.url.get_backend_name()}
    for path, marker in (("/", 'id="composer"'), ("/agents", 'id="tickets"')):
        page = httpx.get(server.url + path)
        assert page.status_code == 200 and marker in page.text
        assert "script-src" not in page.headers["content-security-policy"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(server.url + "/static/chat.js").status_code == 200
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert {"/api/conversations/{conversation_id}/messages", "/api/tickets/{ticket_id}"} <= set(
        paths
    )
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert httpx.get(server.url + "/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_ticket_statuses_match_the_store() -> None:
    assert get_args(TicketStatus) == TICKET_STATUSES
    assert get_args(ConversationPatch.model_fields["status"].annotation) == CONVERSATION_STATUSES


def test_an_agent_takes_over_replies_and_hands_back(
    start_server: StartServer, store: Store
) -> None:
    server = start_server(ScriptedModel(ScriptedModel.text("I'm back: how can I help?")))
    conversation, token = new_conversation(server)
    url = f"{server.url}/api/conversations/{conversation}"
    admin = {"Authorization": f"Bearer {ADMIN}"}
    customer = {"Authorization": f"Bearer {token}"}

    assert_error(httpx.post(url + "/replies", headers=customer, json={"text": "hi"}), 403)
    assert_error(httpx.post(url + "/replies", headers=admin, json={"text": "  "}), 422)
    missing = f"{server.url}/api/conversations/0000000000000000/replies"
    assert_error(httpx.post(missing, headers=admin, json={"text": "hi"}), 404)
    replied = httpx.post(url + "/replies", headers=admin, json={"text": "Hi, Ana from support."})
    assert replied.status_code == 201, replied.text

    seen = httpx.get(url, headers=customer).json()
    assert seen["status"] == "waiting_for_agent"
    assert seen["messages"][-1] == {
        "role": "assistant",
        "name": "agent",
        "content": "Hi, Ana from support.",
    }
    # While a person has the conversation, the model is not asked: the message is kept for them.
    events = events_of(send(server, conversation, token, json={"text": "Thanks Ana"}))
    assert [e.event for e in events] == ["text", "done"]
    assert events[0].data["delta"] == WITH_AGENT_REPLY
    stored = store.conversations.messages(conversation)
    assert stored[-2:] == [
        {"role": "user", "content": "Thanks Ana"},
        {"role": "assistant", "content": WITH_AGENT_REPLY},
    ]

    assert_error(httpx.patch(url, headers=customer, json={"status": "active"}), 403)
    assert_error(httpx.patch(url, headers=admin, json={"status": "closed"}), 422)
    handed_back = httpx.patch(url, headers=admin, json={"status": "active"})
    assert handed_back.json() == {"id": conversation, "status": "active"}
    events = events_of(send(server, conversation, token, json={"text": "One more thing"}))
    assert "".join(e.data["delta"] for e in events if e.event == "text") == (
        "I'm back: how can I help?"
    )


def test_known_conversations_keep_the_most_recently_used(store: Store) -> None:
    from helpline.server.state import KnownConversations

    known = KnownConversations(capacity=2)
    first, second, third = (store.conversations.create(f"{i}" * 64) for i in range(3))
    for conversation_id in (first, second):
        info = store.conversations.get(conversation_id)
        assert info is not None
        known.remember(info)
    assert known.get(first) is not None  # used: now the most recent
    third_info = store.conversations.get(third)
    assert third_info is not None
    known.remember(third_info)
    assert known.get(second) is None  # the least recently used went
    assert known.get(first) is not None and known.get(third) is not None
