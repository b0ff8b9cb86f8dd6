"""Customers the business signed in: every kind of customer token over real HTTP, on SQLite
and PostgreSQL, and each customer reaching only their own conversations and orders."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.models.scripted import Reply, ScriptedModel
from helpline.server import create_app
from helpline.server.ratelimit import Rate, RateLimits
from helpline.server.testing import LiveServer, parse_sse
from helpline.store import Store
from helpline.support import load_profile, support_tools
from helpline.support.demo import seed_demo_orders

SECRET = "the-business-backend-signing-secret-" + "0123456789abcdef" * 2
ADMIN = "agents-key"
KID = "shop-key-1"
HOUR = 3600
OMAR = {"sub": "cust-omar", "email": "omar@example.com", "name": "Omar Haddad"}
LENA = {"sub": "cust-lena", "email": "lena@example.com", "name": "Lena Fischer"}
OMARS_ORDER, LENAS_ORDER = "DD-10231", "DD-10233"  # as the demo orders have them


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Keys:
    private: rsa.RSAPrivateKey
    other: rsa.RSAPrivateKey

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.fixture(scope="module")
def jwks_url(keys: Keys) -> Iterator[str]:
    """The business's key set, served over real HTTP like any JWKS endpoint."""

    async def key_set(_request: Any) -> JSONResponse:
        return JSONResponse(keys.jwks())

    app = Starlette(routes=[Route("/.well-known/jwks.json", key_set)])
    with LiveServer(app, name="key set", lifespan="off") as server:
        yield server.url + "/.well-known/jwks.json"


def claims(who: dict[str, str] = OMAR, lifetime: float = HOUR, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {**who, "iat": int(time.time()), "exp": int(time.time() + lifetime)}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def hs256(body: dict[str, Any], secret: str | bytes = SECRET) -> str:
    return jwt.encode(body, secret, algorithm="HS256")


def rs256(body: dict[str, Any], key: rsa.RSAPrivateKey, kid: str = KID) -> str:
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def hand_signed(header: dict[str, Any], body: dict[str, Any], key: bytes | None) -> str:
    """A token built by hand, as an attacker would: PyJWT refuses to make these."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    signature = _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key else ""
    return f"{signing_input}.{signature}"


def answer_with_tool_result(messages: list[dict[str, Any]]) -> Reply:
    """A model that looks up the order a customer names (with an email only if they give one)
    and then repeats what the tool said."""
    last = messages[-1]
    if last["role"] == "tool":
        return ScriptedModel.text(f"RESULT {last['content']}")
    text = last["content"] if isinstance(last["content"], str) else ""
    order = re.search(r"DD-\d+", text)
    if not order:
        return ScriptedModel.text("Which order?")
    email = re.search(r"\S+@\S+", text)
    arguments = {"order_id": order.group()} | ({"email": email.group()} if email else {})
    return ScriptedModel.call("lookup_order", **arguments)


@dataclass
class Api:
    url: str
    store: Store

    def start(self, token: str | None = None) -> httpx.Response:
        body = {"customer_token": token} if token is not None else None
        return httpx.post(self.url + "/api/conversations", json=body)

    def say(self, conversation_id: str, bearer: str, text: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}/api/conversations/{conversation_id}/messages",
            headers={"Authorization": f"Bearer {bearer}"},
            json={"text": text},
            timeout=30,
        )

    def read(self, conversation_id: str, bearer: str) -> httpx.Response:
        return httpx.get(
            f"{self.url}/api/conversations/{conversation_id}",
            headers={"Authorization": f"Bearer {bearer}"},
        )

    def mine(self, bearer: str) -> httpx.Response:
        return httpx.get(
            self.url + "/api/customers/me/conversations",
            headers={"Authorization": f"Bearer {bearer}"},
        )


def serve(store: Store, **settings: Any) -> LiveServer:
    profile = load_profile()
    model = ScriptedModel(*[answer_with_tool_result] * 200)
    assistant = Assistant(model, store, support_tools(profile), profile.system_prompt)
    generous = RateLimits(
        per_client=Rate(1000, 100), per_conversation=Rate(100, 10), failed_auth=Rate(1000, 100)
    )
    app = create_app(assistant, Settings(admin_key=ADMIN, **settings), limits=generous)
    return LiveServer(app)


@pytest.fixture
def api(store: Store, jwks_url: str) -> Iterator[Api]:
    seed_demo_orders(store)
    with serve(store, identity_secret=SECRET, identity_jwks_url=jwks_url) as server:
        yield Api(server.url, store)


def conversation_count(store: Store) -> int:
    from sqlalchemy import func, select

    from helpline.store.tables import Conversation

    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Conversation)).scalar_one())


def test_a_valid_token_starts_a_conversation_that_belongs_to_the_customer(
    api: Api, keys: Keys
) -> None:
    for token in (hs256(claims()), rs256(claims(), keys.private)):
        started = api.start(token)
        assert started.status_code == 201, started.text
        assert started.json()["customer_id"] == "cust-omar"
        info = api.store.conversations.get(started.json()["id"])
        assert info is not None and info.customer_id == "cust-omar"
        customer = api.store.customers.of_conversation(info.id)
        assert customer is not None and customer.email == "omar@example.com"
        shown = api.read(info.id, ADMIN).json()  # the agents see whose it is
        assert shown["customer_id"] == "cust-omar"
        assert "signed in as Omar Haddad (omar@example.com)" in shown["messages"][0]["content"]
    anonymous = api.start()
    assert anonymous.status_code == 201 and anonymous.json()["customer_id"] is None


BAD_TOKENS = [
    ("expired", "expired"),
    ("forged", "signature does not match"),
    ("tampered", "signature does not match"),
    ("alg none", "not signed (its algorithm is 'none')"),
    ("HS256 with the RS256 public key", "signature does not match"),
    ("RS256 from another key", "signature does not match"),
    ("unknown key id", "names key 'someone-elses-key'"),
    ("HS512", "signed with HS512, but this server accepts only HS256 or RS256"),
    ("lives too long", "more than 24 hours ahead"),
    ("no sub", "lacks the sub claim"),
    ("no email or name", "lacks the email, name claims"),
    ("no exp", "lacks the exp claim"),
    ("email not an address", "is not an email address"),
    ("not a JWT", "not a JWT"),
]
"""Each kind of bad token, and what its refusal says."""


def test_a_bad_token_is_a_401_that_says_what_is_wrong(api: Api, keys: Keys) -> None:
    public_pem = keys.public_pem()
    valid = hs256(claims())
    head, body, signature = valid.split(".")
    raised = json.loads(base64.urlsafe_b64decode(body + "=="))
    tampered_body = _b64(json.dumps({**raised, "sub": "cust-lena"}).encode())
    token = {
        "expired": hs256(claims(lifetime=-2 * HOUR)),
        "forged": hs256(claims(), "a-guessed-secret-that-is-long-enough-for-hs256"),
        "tampered": f"{head}.{tampered_body}.{signature}",
        "alg none": hand_signed({"alg": "none", "typ": "JWT"}, claims(), None),
        "HS256 with the RS256 public key": hand_signed(
            {"alg": "HS256", "typ": "JWT", "kid": KID}, claims(), public_pem
        ),
        "RS256 from another key": rs256(claims(), keys.other),
        "unknown key id": rs256(claims(), keys.private, kid="someone-elses-key"),
        "HS512": jwt.encode(claims(), SECRET, algorithm="HS512"),
        "lives too long": hs256(claims(lifetime=30 * 24 * HOUR)),
        "no sub": hs256(claims(sub=None)),
        "no email or name": hs256(claims(email=None, name=None)),
        "no exp": hs256(claims(exp=None)),
        "email not an address": hs256(claims(email="omar")),
        "not a JWT": "hello",
    }
    assert set(token) == {case for case, _ in BAD_TOKENS}
    for case, said in BAD_TOKENS:
        started = api.start(token[case])
        assert started.status_code == 401, (case, started.text)
        assert said in started.json()["error"]["message"], case
        listed = api.mine(token[case])  # as a bearer credential: refused the same way
        assert listed.status_code == 401 and said in listed.json()["error"]["message"], case
        assert started.headers["www-authenticate"] == "Bearer"
    assert conversation_count(api.store) == 0  # never an anonymous conversation instead


def test_key_confusion_is_refused_by_a_server_that_only_knows_the_public_key(
    sqlite_store: Store, keys: Keys, jwks_url: str
) -> None:
    with serve(sqlite_store, identity_jwks_url=jwks_url) as server:
        confused = hand_signed({"alg": "HS256", "typ": "JWT"}, claims(), keys.public_pem())
        refused = Api(server.url, sqlite_store).start(confused)
        assert refused.status_code == 401
        assert "signed with HS256, but this server accepts only RS256" in refused.text
        assert Api(server.url, sqlite_store).start(rs256(claims(), keys.private)).status_code == 201


def test_without_a_configured_key_a_customer_token_is_refused_not_ignored(
    sqlite_store: Store,
) -> None:
    with serve(sqlite_store) as server:
        refused = Api(server.url, sqlite_store).start(hs256(claims()))
        assert refused.status_code == 503
        assert "set HELPLINE_IDENTITY_SECRET" in refused.json()["error"]["message"]
        assert conversation_count(sqlite_store) == 0


def test_a_customer_token_opens_only_that_customers_conversations(api: Api) -> None:
    omar, lena = hs256(claims(OMAR)), hs256(claims(LENA))
    omars = api.start(omar).json()
    lenas = api.start(lena).json()
    anonymous = api.start().json()

    assert api.read(omars["id"], omar).status_code == 200
    streamed = api.say(omars["id"], omar, "Where is DD-10231?")
    assert streamed.status_code == 200
    assert parse_sse(streamed.text)[-1].event == "done"
    for conversation in (lenas, anonymous):  # someone else's, or nobody's: the same refusal
        for response in (
            api.read(conversation["id"], omar),
            api.say(conversation["id"], omar, "Hi"),
            httpx.get(
                f"{api.url}/api/conversations/{conversation['id']}/images/abc",
                headers={"Authorization": f"Bearer {omar}"},
            ),
        ):
            assert response.status_code == 403
            assert "does not belong to the signed-in customer" in response.text
    assert api.read("no-such-id", omar).status_code == 403  # ids cannot be probed
    assert api.read(omars["id"], omars["token"]).status_code == 200  # its own token still works

    history = api.mine(omar).json()
    assert history["customer_id"] == "cust-omar"
    assert [c["id"] for c in history["conversations"]] == [omars["id"]]
    assert history["conversations"][0]["last_message"].startswith("RESULT")
    assert history["conversations"][0]["status"] == "active"
    assert [c["id"] for c in api.mine(lena).json()["conversations"]] == [lenas["id"]]


def test_a_signed_in_customers_own_order_opens_without_an_email_and_nobody_elses_does(
    api: Api,
) -> None:
    omar = hs256(claims(OMAR))
    conversation = api.start(omar).json()["id"]

    def result(text: str) -> str:
        events = parse_sse(api.say(conversation, omar, text).text)
        return next(e.data["content"] for e in events if e.event == "tool_result")

    own = json.loads(result(f"Where is {OMARS_ORDER}?"))
    assert own["order_id"] == OMARS_ORDER and own["customer_name"] == "Omar Haddad"
    assert "no order" in result(f"And {LENAS_ORDER}?").lower()
    # Naming the other customer's address does not open her order either.
    assert "no order" in result(f"{LENAS_ORDER} lena@example.com").lower()

    anonymous = api.start().json()
    asked = parse_sse(api.say(anonymous["id"], anonymous["token"], f"Where is {OMARS_ORDER}?").text)
    content = next(e.data["content"] for e in asked if e.event == "tool_result")
    assert "email address on the order" in content  # a visitor still proves it with the email


async def test_customers_working_at_once_each_reach_only_their_own(api: Api) -> None:
    tokens = {who["sub"]: hs256(claims(who)) for who in (OMAR, LENA)}
    started = {sub: api.start(token).json()["id"] for sub, token in tokens.items()}
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:

        async def attempt(sub: str, target: str) -> tuple[str, str, int]:
            headers = {"Authorization": f"Bearer {tokens[sub]}"}
            response = await client.get(f"/api/conversations/{started[target]}", headers=headers)
            return sub, target, response.status_code

        async def listing(sub: str) -> tuple[str, list[str]]:
            headers = {"Authorization": f"Bearer {tokens[sub]}"}
            response = await client.get("/api/customers/me/conversations", headers=headers)
            return sub, [c["id"] for c in response.json()["conversations"]]

        pairs = [(s, t) for s in tokens for t in tokens] * 15
        attempts = await asyncio.gather(*(attempt(s, t) for s, t in pairs))
        listings = await asyncio.gather(*(listing(s) for s in tokens for _ in range(15)))
    for sub, target, status in attempts:
        assert status == (200 if sub == target else 403)
    for sub, ids in listings:
        assert ids == [started[sub]]


def test_only_the_allowed_origins_may_call_the_api_from_a_browser(
    sqlite_store: Store,
) -> None:
    shop = "https://shop.example.com"
    with serve(sqlite_store, allowed_origins=f"{shop}, https://www.shop.example.com/") as server:
        allowed = httpx.post(server.url + "/api/conversations", headers={"Origin": shop})
        assert allowed.headers["access-control-allow-origin"] == shop
        assert "Origin" in allowed.headers["vary"]  # a cache keeps each site's answer apart
        other = httpx.post(
            server.url + "/api/conversations", headers={"Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
        assert "Origin" in other.headers["vary"]
        assert "Origin" in httpx.post(server.url + "/api/conversations").headers["vary"]
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        }
        ok = httpx.options(server.url + "/api/conversations", headers={"Origin": shop, **preflight})
        assert (
            ok.status_code == 200
            and "authorization" in ok.headers["access-control-allow-headers"].lower()
        )
        refused = httpx.options(
            server.url + "/api/conversations",
            headers={"Origin": "https://evil.example", **preflight},
        )
        assert "access-control-allow-origin" not in refused.headers
    written_otherwise = "HTTPS://Shop.Example.com:443/, http://127.0.0.1:8080"
    with serve(sqlite_store, allowed_origins=written_otherwise) as server:  # as browsers send it
        for origin in (shop, "http://127.0.0.1:8080"):
            answered = httpx.post(server.url + "/api/conversations", headers={"Origin": origin})
            assert answered.headers["access-control-allow-origin"] == origin
    with serve(sqlite_store) as server:  # none by default
        plain = httpx.post(server.url + "/api/conversations", headers={"Origin": shop})
        assert "access-control-allow-origin" not in plain.headers


def test_an_origin_with_a_path_or_wildcard_is_a_clear_configuration_error(
    sqlite_store: Store,
) -> None:
    from helpline.config import ConfigError

    for bad in (
        "*",
        "https://shop.example.com/app",
        "shop.example.com",
        "https://shop.example.com?page=1",
        "https://admin@shop.example.com",
        "https://shop.example.com:99999",
    ):
        with pytest.raises(ConfigError, match="HELPLINE_ALLOWED_ORIGINS"):
            serve(sqlite_store, allowed_origins=bad)


async def test_the_offline_assistant_does_not_ask_a_signed_in_customer_for_an_email(
    sqlite_store: Store,
) -> None:
    from helpline.events import TurnToolResult
    from helpline.messages import UserMessage
    from helpline.models.offline import OfflineModel
    from helpline.store import VerifiedCustomer

    seed_demo_orders(sqlite_store)
    profile = load_profile()
    assistant = Assistant(
        OfflineModel(), sqlite_store, support_tools(profile), profile.system_prompt
    )
    omar = VerifiedCustomer("cust-omar", "omar@example.com", "Omar Haddad")
    conversation_id = assistant.new_conversation(customer=omar)
    events = [
        e
        async for e in assistant.run_turn(
            conversation_id, UserMessage(content="Where is my order DD-10231?")
        )
    ]
    [looked_up] = [e for e in events if isinstance(e, TurnToolResult)]
    assert looked_up.call.function.name == "lookup_order"
    assert json.loads(looked_up.content)["order_id"] == "DD-10231"


def test_an_unreachable_key_set_is_a_503_that_names_it(sqlite_store: Store, keys: Keys) -> None:
    import socket

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}/jwks.json"
    with serve(sqlite_store, identity_jwks_url=nowhere) as server:
        refused = Api(server.url, sqlite_store).start(rs256(claims(), keys.private))
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert f"key set at {nowhere} could not be read" in refused.json()["error"]["message"]
        assert conversation_count(sqlite_store) == 0


def _part(value: Any) -> str:
    return _b64(json.dumps(value).encode())


def test_a_malformed_token_is_a_401_never_a_server_error(api: Api, keys: Keys) -> None:
    payload = _part(claims())
    signed = hs256(claims())
    malformed = {
        "a key id that is not a string": f"{_part({'alg': 'HS256', 'kid': {'x': 1}})}.{payload}.x",
        "an unknown critical header": f"{_part({'alg': 'HS256', 'crit': ['x']})}.{payload}.x",
        "claims that are not an object": f"{_part({'alg': 'RS256', 'kid': KID})}.{_part([1])}.x",
        "claims that are not JSON": f"{_part({'alg': 'RS256', 'kid': KID})}.{_b64(b'{')}.x",
        "a space inside": signed.replace(".", ". ", 1),
    }
    for case, token in malformed.items():
        for response in (api.start(token), api.mine(token)):
            assert response.status_code == 401, (case, response.text)
            assert "not a JWT" in response.json()["error"]["message"], case
    huge = signed + "A" * 10_000
    assert api.start(huge).status_code == 422 and "at most 8192 characters" in api.start(huge).text
    assert api.mine(huge).status_code == 401 and "not a JWT" in api.mine(huge).text
    not_ascii = api.start(signed[:-2] + "é")
    assert not_ascii.status_code == 401 and "not a JWT" in not_ascii.text
    refused = {
        "an RS256 token that names no key": (rs256(claims(), keys.private, kid=""), "no kid"),
        "an exp beyond any clock": (hs256(claims(exp=10**400)), "more than 24 hours ahead"),
        "a sub that is a number": (hs256(claims(sub=42)), "Subject must be a string"),
        "a blank sub": (hs256(claims(sub="  ")), "sub claim is empty"),
        "an email that is not text": (hs256(claims(email={"at": "@"})), "email claim is not text"),
    }
    for case, (token, said) in refused.items():
        response = api.start(token)
        assert response.status_code == 401 and said in response.text, (case, response.text)
    assert conversation_count(api.store) == 0
    # A line break copied along with a good token changes nothing that was signed.
    assert api.start(f" {signed}\n").status_code == 201


def test_a_customer_id_is_exactly_what_the_business_signed(api: Api) -> None:
    omar = hs256(claims(OMAR))
    omars = api.start(omar).json()["id"]
    padded = hs256(claims({**OMAR, "sub": " cust-omar "}))
    assert api.read(omars, padded).status_code == 403  # another of the business's ids
    assert api.mine(padded).json()["conversations"] == []


@pytest.fixture(scope="module")
def broken_key_set(keys: Keys) -> Iterator[tuple[str, dict[str, Any]]]:
    """A key set whose answer each test chooses: ``served["body"]`` (bytes or JSON)."""
    served: dict[str, Any] = {}

    async def key_set(_request: Any) -> Any:
        from starlette.responses import Response

        body = served["body"]
        if isinstance(body, bytes):
            return Response(body, media_type="text/html")
        return JSONResponse(body)

    app = Starlette(routes=[Route("/jwks.json", key_set)])
    with LiveServer(app, name="broken key set", lifespan="off") as server:
        yield server.url + "/jwks.json", served


def test_a_key_set_that_cannot_check_tokens_is_a_clear_error_never_a_server_error(
    sqlite_store: Store, keys: Keys, broken_key_set: tuple[str, dict[str, Any]]
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    url, served = broken_key_set
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1())))
    answers = {
        "a web page": (b"<html>Not found</html>", 503, "holds no key that can check a token"),
        "a list": ([keys.jwks()["keys"][0]], 503, "holds no key that can check a token"),
        "no keys": ({"keys": []}, 503, "holds no key that can check a token"),
        "an EC key under the token's kid": (
            {"keys": [{**ec_jwk, "kid": KID, "use": "sig"}]},
            401,
            f"Key {KID!r} in the business's key set is not an RSA public key",
        ),
    }
    for number, (case, (body, status, said)) in enumerate(answers.items()):
        served["body"] = body
        fresh = f"{url}?case={number}"  # another address: nothing cached from the case before
        with serve(sqlite_store, identity_jwks_url=fresh) as server:
            refused = Api(server.url, sqlite_store).start(rs256(claims(), keys.private))
        assert refused.status_code == status, (case, refused.text)
        assert said in refused.json()["error"]["message"], case
    assert conversation_count(sqlite_store) == 0


def test_another_customers_events_images_and_handoff_stay_closed(api: Api) -> None:
    from tests.conftest import SHOP_RECEIPT

    omar, lena = hs256(claims(OMAR)), hs256(claims(LENA))
    omars, lenas = api.start(omar).json()["id"], api.start(lena).json()["id"]
    shared = httpx.post(
        f"{api.url}/api/conversations/{lenas}/messages",
        headers={"Authorization": f"Bearer {lena}"},
        data={"text": "My receipt"},
        files={"image": ("receipt.jpg", SHOP_RECEIPT.read_bytes(), "image/jpeg")},
        timeout=30,
    )
    assert shared.status_code == 200, shared.text
    words = json.dumps(api.read(lenas, lena).json()["messages"])
    image = re.search(r"image://([A-Za-z0-9_-]+)", words)
    assert image is not None, words

    def get(path: str, bearer: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {bearer}"}
        with httpx.stream("GET", api.url + path, headers=headers, timeout=10) as response:
            return response  # the status and headers; an event stream is left unread

    lenas_image = f"/api/conversations/{lenas}/images/{image[1]}"
    assert get(lenas_image, lena).status_code == 200
    assert get(lenas_image, omar).status_code == 403
    assert get(f"/api/conversations/{omars}/images/{image[1]}", omar).status_code == 404
    own_events = get(f"/api/conversations/{omars}/events", omar)
    assert own_events.status_code == 200
    assert own_events.headers["content-type"].startswith("text/event-stream")
    for path in (f"/api/conversations/{lenas}/events", f"/api/conversations/{lenas}"):
        refused = get(path, omar)
        assert refused.status_code == 403
    handoff = httpx.post(
        f"{api.url}/api/conversations/{lenas}/handoff",
        headers={"Authorization": f"Bearer {omar}"},
        json={},
    )
    assert handoff.status_code == 403 and "does not belong" in handoff.text
    assert api.store.tickets.by_tool_call(lenas, "person-first") is None


async def test_signed_in_customers_asking_at_once_open_only_their_own_orders(api: Api) -> None:
    tokens = {"omar": hs256(claims(OMAR)), "lena": hs256(claims(LENA))}
    asks = {  # each names both orders, the other one with its owner's own email address
        "omar": [OMARS_ORDER, f"{LENAS_ORDER} lena@example.com", LENAS_ORDER],
        "lena": [LENAS_ORDER, f"{OMARS_ORDER} omar@example.com", OMARS_ORDER],
    }
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:

        async def ask(who: str, text: str) -> tuple[str, str, dict[str, Any]]:
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            started = await client.post("/api/conversations", json={"customer_token": tokens[who]})
            conversation = started.json()["id"]
            answer = await client.post(
                f"/api/conversations/{conversation}/messages", headers=headers, json={"text": text}
            )
            events = parse_sse(answer.text)
            content = next(e.data["content"] for e in events if e.event == "tool_result")
            return who, text, json.loads(content) if content.startswith("{") else {}

        results = await asyncio.gather(
            *(ask(who, text) for who, texts in asks.items() for text in texts for _ in range(3))
        )
    own = {"omar": OMARS_ORDER, "lena": LENAS_ORDER}
    for who, text, found in results:
        if text == own[who]:
            assert found.get("order_id") == own[who], (who, text, found)
        else:
            assert "order_id" not in found, (who, text, found)  # never someone else's


def test_an_unreachable_key_set_is_asked_again_only_after_a_while(keys: Keys) -> None:
    from starlette.responses import Response

    from helpline.identity import UNREACHABLE_RETRY_SECONDS, IdentityUnavailable, IdentityVerifier

    asked = []

    async def failing(_request: Any) -> Response:
        asked.append(1)
        return Response("the key server is down", status_code=502)

    now = [time.time()]
    app = Starlette(routes=[Route("/jwks.json", failing)])
    with LiveServer(app, name="failing key set", lifespan="off") as server:
        verifier = IdentityVerifier(jwks_url=server.url + "/jwks.json", clock=lambda: now[0])
        token = rs256(claims(), keys.private)
        for _ in range(5):  # a burst of customers: the address is tried once, not five times
            with pytest.raises(IdentityUnavailable, match="could not be read"):
                verifier.verify(token)
        assert len(asked) == 1
        now[0] += UNREACHABLE_RETRY_SECONDS + 1
        with pytest.raises(IdentityUnavailable, match="could not be read"):
            verifier.verify(token)
        assert len(asked) == 2


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ({"identity_secret": "too-short"}, "HELPLINE_IDENTITY_SECRET is 9 bytes long"),
        ({"identity_jwks_url": "file:///etc/passwd"}, "HELPLINE_IDENTITY_JWKS_URL is"),
        ({"identity_jwks_url": "keys.json"}, "HELPLINE_IDENTITY_JWKS_URL is"),
    ],
)
def test_a_customer_token_setting_that_cannot_work_stops_the_server_at_start(
    sqlite_store: Store, setting: dict[str, str], said: str
) -> None:
    from helpline.config import ConfigError

    with pytest.raises(ConfigError, match=said):
        serve(sqlite_store, **setting)


def test_helpline_serve_names_a_guessable_secret_and_stops(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "HELPLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'helpline.db'}",
        "HELPLINE_IDENTITY_SECRET": "secret",
    }
    command = [sys.executable, "-m", "helpline.cli", "serve", "--port", "0"]
    ended = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert ended.returncode != 0
    assert "HELPLINE_IDENTITY_SECRET is 6 bytes long" in ended.stderr + ended.stdout
    assert "Traceback" not in ended.stderr
