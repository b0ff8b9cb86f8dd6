"""Hostile and broken input against a real server, on SQLite and PostgreSQL: always a clear 4xx."""

from __future__ import annotations

import io
import time

import httpx
import pytest
from PIL import Image

from helpline.models.scripted import ScriptedModel
from helpline.server import Rate, RateLimits
from helpline.store import Store
from tests.test_server import (
    ADMIN,
    StartServer,
    assert_error,
    new_conversation,
    png_bytes,
    send,
    start_server,
)

__all__ = ["start_server"]  # the fixture, shared with the server's other tests

AGENT = {"Authorization": f"Bearer {ADMIN}"}
DEEP_JSON = ('{"text": ' + "[" * 5000 + "]" * 5000 + "}").encode()
LONE_SURROGATE = b'{"text": "I was charged twice \\ud800"}'


def test_deeply_nested_json_is_a_400_on_every_json_endpoint(
    start_server: StartServer, store: Store
) -> None:
    server = start_server(ScriptedModel())
    conversation, token = new_conversation(server)
    ticket = store.tickets.create("Omar", "cannot log in", conversation_id=conversation)[0].id
    json_type = {"content-type": "application/json"}
    customer = {"Authorization": f"Bearer {token}", **json_type}
    agent = {**AGENT, **json_type}
    base = f"{server.url}/api"
    for method, url, headers in [
        ("POST", f"{base}/conversations/{conversation}/messages", customer),
        ("POST", f"{base}/conversations/{conversation}/replies", agent),
        ("PATCH", f"{base}/conversations/{conversation}", agent),
        ("PATCH", f"{base}/tickets/{ticket}", agent),
    ]:
        response = httpx.request(method, url, headers=headers, content=DEEP_JSON)
        assert "nested too deeply" in assert_error(response, 400), url
    assert len(store.conversations.messages(conversation)) == 1


@pytest.mark.parametrize(
    "ticket_id",
    ["2147483648", "9223372036854775808", "-9223372036854775809", "0", "9" * 5000],
    ids=["int32-max-plus-one", "int64-max-plus-one", "int64-min-minus-one", "zero", "huge"],
)
def test_ticket_numbers_no_ticket_can_have_are_not_found(
    start_server: StartServer, store: Store, ticket_id: str
) -> None:
    server = start_server(ScriptedModel())
    url = f"{server.url}/api/tickets/{ticket_id}"
    for response in (
        httpx.get(url, headers=AGENT),
        httpx.patch(url, headers=AGENT, json={"status": "resolved"}),
    ):
        assert response.status_code in (404, 422), response.text
        assert_error(response, response.status_code)


@pytest.mark.parametrize("bad_id", ["%00", "a%00b", "%ED%A0%80", "x" * 65, "a.b"])
def test_conversation_and_image_ids_of_the_wrong_shape_are_a_4xx(
    start_server: StartServer, store: Store, bad_id: str
) -> None:
    server = start_server(ScriptedModel())
    conversation, token = new_conversation(server)
    customer = {"Authorization": f"Bearer {token}"}
    base = f"{server.url}/api/conversations"
    for credentials in (customer, AGENT):
        for response in (
            httpx.get(f"{base}/{bad_id}", headers=credentials),
            httpx.patch(f"{base}/{bad_id}", headers=credentials, json={"status": "active"}),
            httpx.delete(f"{base}/{bad_id}", headers=credentials),
            httpx.post(f"{base}/{bad_id}/replies", headers=credentials, json={"text": "hi"}),
            httpx.post(f"{base}/{bad_id}/messages", headers=credentials, json={"text": "hi"}),
            httpx.get(f"{base}/{conversation}/images/{bad_id}", headers=credentials),
        ):
            assert_error(response, 422)


def test_a_lone_surrogate_is_a_4xx_saying_the_text_has_invalid_characters(
    start_server: StartServer, store: Store
) -> None:
    model = ScriptedModel(ScriptedModel.text("Still here."))
    server = start_server(model)
    conversation, token = new_conversation(server)
    json_type = {"content-type": "application/json"}
    for body in (
        LONE_SURROGATE,
        b'{"text": "\\udfff alone"}',
        b'{"text": "my receipt", "image_url": "https://example.com/\\ud83d.png"}',
        b'{"text": "I can\'t log in\\u0000"}',  # PostgreSQL cannot store a NUL in a ticket
    ):
        refused = send(server, conversation, token, content=body, headers=json_type)
        assert "invalid characters" in assert_error(refused, 422)
        assert "retry-after" not in refused.headers  # sending it again cannot help
    for body in (LONE_SURROGATE, b'{"text": "hello\\u0000"}'):
        reply = httpx.post(
            f"{server.url}/api/conversations/{conversation}/replies",
            headers={**AGENT, **json_type},
            content=body,
        )
        assert "invalid characters" in assert_error(reply, 422)
    assert len(store.conversations.messages(conversation)) == 1
    assert model.requests == []
    # A real emoji (a surrogate pair in JSON) is a character like any other.
    pair = send(
        server, conversation, token, content=b'{"text": "hi \\ud83d\\ude00"}', headers=json_type
    )
    assert pair.status_code == 200, pair.text
    assert store.conversations.messages(conversation)[1]["content"] == "hi \N{GRINNING FACE}"


def test_a_multipart_text_that_is_not_utf8_is_never_a_5xx(
    start_server: StartServer, store: Store
) -> None:
    model = ScriptedModel(ScriptedModel.text("Got it."))
    server = start_server(model)
    conversation, token = new_conversation(server)
    response = send(
        server,
        conversation,
        token,
        data={"text": b"receipt \xed\xa0\x80"},  # a surrogate as UTF-8 would write it
        files={"image": ("receipt.png", png_bytes(), "image/png")},
    )
    assert response.status_code < 500, response.text
    assert "\ud800" not in str(store.conversations.messages(conversation))


def test_an_interrupted_photo_upload_is_a_4xx_asking_to_send_it_again(
    start_server: StartServer, store: Store
) -> None:
    model = ScriptedModel()
    server = start_server(model)
    conversation, token = new_conversation(server)
    photo = png_bytes((300, 200))
    for cut in (photo[:60], photo[: len(photo) // 2]):
        refused = send(
            server, conversation, token, files={"image": ("receipt.png", cut, "image/png")}
        )
        message = assert_error(refused, 415)
        assert "could not be read" in message and "Send the photo again" in message
    assert len(store.conversations.messages(conversation)) == 1
    assert model.requests == []


def from_address(address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.x address is this machine)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def test_guessing_the_admin_key_or_a_token_is_rate_limited_per_address(
    start_server: StartServer, store: Store
) -> None:
    server = start_server(ScriptedModel())
    conversation, token = new_conversation(server)
    with from_address("127.0.0.1") as guesser:
        statuses = [
            guesser.get(server.url + "/metrics", headers={"Authorization": f"Bearer guess{n}"})
            for n in range(300)
        ]
        assert [r.status_code for r in statuses[:10]] == [403] * 10
        assert {r.status_code for r in statuses[10:]} == {429}
        limited = statuses[-1]
        assert "failed sign-ins" in assert_error(limited, 429)
        assert 1 <= int(limited.headers["retry-after"]) <= 10
        # The right key from the guessing address waits too: a guess learns nothing.
        for path in ("/metrics", "/api/tickets", f"/api/conversations/{conversation}"):
            assert_error(guesser.get(server.url + path, headers=AGENT), 429)
        assert_error(
            guesser.get(
                f"{server.url}/api/conversations/{conversation}",
                headers={"Authorization": f"Bearer {token}"},
            ),
            429,
        )
    with from_address("127.0.0.2") as agent:  # another address is not held up
        for path in ("/metrics", "/api/tickets", f"/api/conversations/{conversation}"):
            assert agent.get(server.url + path, headers=AGENT).status_code == 200, path
    with from_address("127.0.0.3") as token_guesser:
        url = f"{server.url}/api/conversations/{conversation}"
        # Wrong, malformed and missing tokens.
        guesses = ["Bearer " + "A" * 43, "Bearer not-a-token", "Basic YTpi"] * 4
        answers = [
            token_guesser.get(url, headers={"Authorization": guess}).status_code
            for guess in guesses
        ]
        assert answers[:10] == [403, 401, 401] * 3 + [403]
        assert answers[10:] == [429, 429]
    with from_address("127.0.0.4") as customer:
        mine = customer.get(
            f"{server.url}/api/conversations/{conversation}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert mine.status_code == 200


def test_failed_sign_ins_are_allowed_again_as_the_bucket_refills(
    start_server: StartServer, store: Store
) -> None:
    limits = RateLimits(failed_auth=Rate(burst=2, per_second=1))
    server = start_server(ScriptedModel(), limits=limits)
    wrong = {"Authorization": "Bearer wrong"}
    tickets = server.url + "/api/tickets"
    assert [httpx.get(tickets, headers=wrong).status_code for _ in range(3)] == [403, 403, 429]
    assert_error(httpx.get(tickets, headers=AGENT), 429)
    time.sleep(1.1)
    assert httpx.get(tickets, headers=AGENT).status_code == 200
    # Successes take nothing from the bucket.
    assert [httpx.get(tickets, headers=AGENT).status_code for _ in range(5)] == [200] * 5


def test_an_upload_whose_file_name_holds_control_characters_is_stored(
    start_server: StartServer, store: Store
) -> None:
    server = start_server(ScriptedModel(ScriptedModel.text("Got it.")))
    conversation, token = new_conversation(server)
    form = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="image"; filename="rec\x00eipt\x1b.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + png_bytes() + b"\r\n--b0undary--\r\n"
    )
    headers = {"content-type": "multipart/form-data; boundary=b0undary"}
    response = send(server, conversation, token, content=form, headers=headers)
    assert response.status_code == 200, response.text
    reference = store.conversations.messages(conversation)[1]["content"]
    record = store.images.get(reference.removeprefix("[Shared image: image://").rstrip("]"))
    assert record is not None and record.source == "upload:rec eipt .png"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=x", b"not a form at all"),
    ],
    ids=["no-boundary", "garbage"],
)
def test_a_broken_form_is_a_400_saying_how_to_send_one(
    start_server: StartServer, store: Store, content_type: str, body: bytes
) -> None:
    server = start_server(ScriptedModel())
    conversation, token = new_conversation(server)
    refused = send(
        server, conversation, token, content=body, headers={"content-type": content_type}
    )
    assert "Send the message as multipart/form-data" in assert_error(refused, 400)


def test_an_upload_of_too_many_pixels_is_a_4xx_before_it_is_decoded(
    start_server: StartServer, store: Store
) -> None:
    """A 200 KB PNG of 64 megapixels (one colour compresses well) would decode to 190 MB."""
    buffer = io.BytesIO()
    Image.new("RGB", (8000, 8000), "white").save(buffer, "PNG")
    model = ScriptedModel()
    server = start_server(model)
    conversation, token = new_conversation(server)
    refused = send(
        server, conversation, token, files={"image": ("scan.png", buffer.getvalue(), "image/png")}
    )
    assert "too many pixels" in assert_error(refused, 415)
    assert len(store.conversations.messages(conversation)) == 1
