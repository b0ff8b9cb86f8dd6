"""The offline assistant at the model level: wire messages and tool schemas in, events out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpline.messages import ToolCall
from helpline.models.base import (
    ChatModel,
    Finish,
    ModelError,
    ResponseFormat,
    TextDelta,
    ToolCallReady,
    Usage,
)
from helpline.models.offline import NOTICE, OfflineModel
from tests.tool_stubs import TOOLS

ALL = list(TOOLS.values())

ASK_NAME = "Could you tell me your name so I can file a ticket?"
ASK_ORDER = (
    "What's the order number? (it looks like DD-10234). And what's the email address you "
    "order with? I can only open orders with it."
)
EMAIL = "omar@example.com"
RECEIPT = {
    "date": "2024-05-01",
    "items": [
        {"name": "Cheeseburger", "quantity": 2, "price_in_cents": 1200},
        {"name": "Soda", "quantity": 1, "price_in_cents": 199},
    ],
    "currency": "USD",
    "total_in_cents": 2599,
}
ORDER = {
    "order_id": "DD-10234",
    "restaurant": "Pizza Place",
    "status": "delivered",
    "placed_at": "2024-05-01T12:00:00+00:00",
    "delivered_at": "2024-05-01T12:40:00+00:00",
    "total_cents": 1650,
    "currency": "EUR",
    "refundable_until": "2024-05-31T12:40:00+00:00",
    "items": [
        {"name": "Margherita", "quantity": 1, "unit_price_cents": 1200},
        {"name": "Garlic bread", "quantity": 1, "unit_price_cents": 450},
    ],
    "refunds": [],
}


@dataclass
class Reply:
    text: str
    calls: list[ToolCall]
    events: list[Any] = field(default_factory=list)

    def arguments(self, index: int = 0) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.calls[index].function.arguments)
        return parsed


TERMINAL = OfflineModel(local_files_allowed=True)  # the customer is at this machine


async def respond(messages: list[dict[str, Any]], tools: list[dict[str, Any]] = ALL) -> Reply:
    events = [e async for e in TERMINAL.stream(messages, tools)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls = [e.call for e in events if isinstance(e, ToolCallReady)]
    return Reply(text, calls, events)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def called(reply: Reply, results: list[Any]) -> list[dict[str, Any]]:
    """The assistant's tool-call message and a tool message per call with ``results``."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text or None,
        "tool_calls": [c.model_dump() for c in reply.calls],
    }
    answers = [
        {
            "role": "tool",
            "tool_call_id": c.id,
            "content": r if isinstance(r, str) else json.dumps(r),
        }
        for c, r in zip(reply.calls, results, strict=True)
    ]
    return [message, *answers]


# The table: (conversation, expected tool or None, expected arguments or reply text) ----------

LOGIN = [user("Hi, I can't log in to my account"), assistant(ASK_NAME)]
WHERE = [user("where is my order?"), assistant(ASK_ORDER)]
WHAT = [user("I have a problem"), assistant("I'm sorry to hear that. What happened?")]

# Argument values: exact, or ("~", substring) for "contains, ignoring case".
Args = dict[str, Any]
CASES: list[tuple[str, list[dict[str, Any]], str | None, Args | str]] = [
    # Problems: a ticket needs a name and what happened.
    ("login, no name", [user("Hi, I can't log in to my account")], None, ASK_NAME),
    (
        "typos",
        [user("cant loggin, forgot pasword")],
        "search_help_center",
        {"query": "login and password"},
    ),
    ("typos in a problem", [user("the app keeps crashsing, cant loggin")], None, ASK_NAME),
    ("shouting", [user("THE APP CRASHES EVERY TIME I OPEN IT")], None, ASK_NAME),
    ("locked out is no name", [user("I'm locked out of my account")], None, ASK_NAME),
    ("driver", [user("my driver was rude to me")], None, ASK_NAME),
    ("vague problem", [user("I have a problem")], None, "What happened?"),
    (
        "name and problem",
        [user("My name is Omar and I can't log in")],
        "create_customer_ticket",
        {"name": "Omar", "issue": ("~", "log in")},
    ),
    (
        "I'm Name",
        [user("I'm Omar, the app keeps crashing")],
        "create_customer_ticket",
        {"name": "Omar", "issue": ("~", "crashing")},
    ),
    (
        "Name here + emoji",
        [user("Omar here, I was charged twice 😡")],
        "create_customer_ticket",
        {"name": "Omar", "issue": ("~", "charged twice")},
    ),
    (
        "name: full name",
        [user("name: Omar Haddad. my food arrived cold")],
        "create_customer_ticket",
        {"name": "Omar Haddad", "issue": ("~", "cold")},
    ),
    (
        "this is Name from Town",
        [user("this is Omar from Leeds, my order is missing the fries")],
        "create_customer_ticket",
        {"name": "Omar", "issue": ("~", "missing the fries")},
    ),
    (
        "name after the problem",
        [user("I was charged twice for one order, I'm Omar")],
        "create_customer_ticket",
        {"name": "Omar", "issue": ("~", "Payment problem")},
    ),
    (
        "bare name after asked",
        [*LOGIN, user("omar")],
        "create_customer_ticket",
        {"name": "Omar", "issue": ("~", "log in")},
    ),
    (
        "it's name",
        [*LOGIN, user("it's omar")],
        "create_customer_ticket",
        {"name": "Omar"},
    ),
    (
        "full name alone",
        [*LOGIN, user("Omar Haddad")],
        "create_customer_ticket",
        {"name": "Omar Haddad"},
    ),
    (
        "apostrophe name",
        [*LOGIN, user("O'Brien")],
        "create_customer_ticket",
        {"name": "O'Brien"},
    ),
    ("not a name: locked out", [*LOGIN, user("I'm locked out")], None, ASK_NAME),
    ("not a name: yes", [*LOGIN, user("yes")], None, ASK_NAME),
    (
        "name before problem",
        [user("my name is Omar"), assistant("Nice to meet you!"), user("the app keeps crashing")],
        "create_customer_ticket",
        {"name": "Omar", "issue": ("~", "App problem")},
    ),
    ("details after what happened", [*WHAT, user("the driver threw my bag at me")], None, ASK_NAME),
    (
        "details then name",
        [*WHAT, user("the driver threw my bag at me"), assistant(ASK_NAME), user("Sam")],
        "create_customer_ticket",
        {"name": "Sam", "issue": ("~", "threw my bag")},
    ),
    ("never mind", [*LOGIN, user("actually never mind")], None, "dropped"),
    # Orders.
    # An order opens only with the email address on it (the tool checks that it matches).
    ("order id, no email", [user("Where is my order DD-10234?")], None, "email address"),
    (
        "order id and email",
        [user("Where is my order DD-10234? It's omar@example.com")],
        "lookup_order",
        {"order_id": "DD-10234", "email": EMAIL},
    ),
    (
        "order id lower case",
        [user("status of my order dd-10234 pls, Omar@Example.com.")],
        "lookup_order",
        {"order_id": "DD-10234", "email": "Omar@Example.com"},
    ),
    (
        "order number",
        [user("where's my order 10234 (omar@example.com)")],
        "lookup_order",
        {"order_id": "10234", "email": EMAIL},
    ),
    ("where is my order, no id", [user("where is my order?")], None, "order number"),
    (
        "id after asked",
        [*WHERE, user("DD-10234 and omar@example.com")],
        "lookup_order",
        {"order_id": "DD-10234", "email": EMAIL},
    ),
    (
        "email after the id",
        [*WHERE, user("DD-10234"), assistant("And what's the email address?"), user(EMAIL)],
        "lookup_order",
        {"order_id": "DD-10234", "email": EMAIL},
    ),
    ("email instead of id", [*WHERE, user(EMAIL)], "list_recent_orders", {"email": EMAIL}),
    ("a name opens no orders", [*WHERE, user("Omar Haddad")], None, "email address"),
    (
        "refund needs the order's items first",
        [user("My order DD-10234 arrived cold, I want a refund. omar@example.com")],
        "lookup_order",
        {"order_id": "DD-10234", "email": EMAIL},
    ),
    ("refund without order", [user("I want a refund, my food was cold")], None, "order number"),
    # Questions for the help centre.
    (
        "refund policy",
        [user("how do refunds work?")],
        "search_help_center",
        {"query": ("~", "refund")},
    ),
    (
        "allergens",
        [user("Do you have allergen info for the burgers?")],
        "search_help_center",
        {"query": ("~", "allergen")},
    ),
    (
        "refund timing",
        [user("how long do refunds take?")],
        "search_help_center",
        {"query": "how long refunds take to show up"},
    ),
    (
        "refund window",
        [user("how long do I have to ask for a refund?")],
        "search_help_center",
        {"query": "refund window"},
    ),
    (
        "delivery times",
        [user("how long does delivery usually take")],
        "search_help_center",
        {"query": ("~", "delivery")},
    ),
    (
        "how-to",
        [user("How do I reset my password?")],
        "search_help_center",
        {"query": "login and password"},
    ),
    (
        "new question while a ticket waits",
        [*LOGIN, user("how do refunds work?")],
        "search_help_center",
        {"query": ("~", "refund")},
    ),
    # A person.
    (
        "human",
        [user("I want to speak to a human")],
        "escalate_to_human",
        {"reason": ("~", "speak to a human")},
    ),
    (
        "agent with context",
        [*LOGIN, user("just get me a real person")],
        "escalate_to_human",
        {"reason": ("~", "log in")},
    ),
    # Images.
    (
        "stored image",
        [user("[Shared image: image://3f2a9c0d]")],
        "analyze_receipt_image",
        {"image_url": "image://3f2a9c0d"},
    ),
    (
        "URL with query",
        [user("here's my receipt https://cdn.example.com/r/123.jpg?sig=abc&exp=1.")],
        "analyze_receipt_image",
        {"image_url": "https://cdn.example.com/r/123.jpg?sig=abc&exp=1"},
    ),
    # Small talk and everything else.
    ("greeting", [user("hello")], None, "What can I do for you?"),
    ("greeting with name", [user("Hi, I'm Omar")], None, "Nice to meet you, Omar!"),
    ("thanks", [user("thanks!")], None, "You're welcome"),
    ("goodbye", [user("ok bye")], None, "Have a good day"),
    ("off topic", [user("what's the weather like?")], None, "I'm the support assistant"),
]


@pytest.mark.parametrize("text", ["I'm hungry", "I'm so tired", "I'm confused"])
async def test_a_state_is_no_name(text: str) -> None:
    reply = await respond([user(text)])
    assert "Nice to meet you" not in reply.text
    assert all(c.function.name != "create_customer_ticket" for c in reply.calls)


def _matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, tuple) and expected[0] == "~":
        return isinstance(actual, str) and expected[1].lower() in actual.lower()
    return bool(expected == actual)


@pytest.mark.parametrize(
    ("conversation", "tool_name", "expected"),
    [pytest.param(c, t, e, id=name) for name, c, t, e in CASES],
)
async def test_utterances(
    conversation: list[dict[str, Any]], tool_name: str | None, expected: Args | str
) -> None:
    reply = await respond(conversation)
    if tool_name is None:
        assert reply.calls == []
        assert isinstance(expected, str)
        assert expected.lower() in reply.text.lower(), reply.text
        return
    assert [c.function.name for c in reply.calls] == [tool_name], reply.text
    arguments = reply.arguments()
    assert isinstance(expected, dict)
    for key, value in expected.items():
        assert _matches(value, arguments[key]), (key, arguments)


# The seed conversations ---------------------------------------------------------------------


async def test_seed_login_ticket() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a support assistant."},
        user("Hi, I can't log in to my account"),
    ]
    first = await respond(messages)
    assert first.calls == []
    assert "your name" in first.text
    messages += [assistant(first.text), user("Omar")]

    second = await respond(messages)
    assert [c.function.name for c in second.calls] == ["create_customer_ticket"]
    arguments = second.arguments()
    assert arguments["name"] == "Omar"
    assert "log in" in arguments["issue"]
    messages += called(second, ["Ticket #12 created for Omar (status: open). Issue: x"])

    third = await respond(messages)
    assert third.calls == []
    assert "#12" in third.text
    assert isinstance(third.events[-1], Finish) and third.events[-1].reason == "stop"


async def test_seed_receipt() -> None:
    url = "https://receipts.example.com/r/8841.jpg?token=a1b2"
    messages = [user(f"Here's my receipt from last night: {url}")]
    first = await respond(messages)
    assert [c.function.name for c in first.calls] == ["analyze_receipt_image"]
    assert first.arguments() == {"image_url": url}
    messages += called(first, [RECEIPT])

    second = await respond(messages)
    assert second.calls == []
    assert "$25.99" in second.text
    assert "1 May 2024" in second.text
    assert "2 × Cheeseburger ($12.00)" in second.text


async def test_receipt_complaint_becomes_a_ticket_with_the_receipt_facts() -> None:
    messages = [user("[Shared image: image://abc123]\nI was charged for a soda I never ordered")]
    first = await respond(messages)
    messages += called(first, [RECEIPT])
    second = await respond(messages)
    assert second.calls == []
    assert "$25.99" in second.text and "your name" in second.text
    messages += [assistant(second.text), user("Omar")]
    third = await respond(messages)
    issue = third.arguments()["issue"]
    assert "soda I never ordered" in issue
    assert "2024-05-01" in issue and "$25.99" in issue and "Soda" in issue


async def test_the_order_just_looked_up_is_the_one_a_refund_is_for() -> None:
    messages = [user("Where is my order DD-10234?"), assistant("And your email address?")]
    messages.append(user(EMAIL))
    lookup = await respond(messages)
    assert "only help with support" not in lookup.text  # an email address is an answer
    assert [c.function.name for c in lookup.calls] == ["lookup_order"]
    messages += called(lookup, [ORDER])
    follow_up = await respond(messages)
    messages += [assistant(follow_up.text), user("the margherita was cold, I want a refund")]
    refund = await respond(messages)
    assert [c.function.name for c in refund.calls] == ["request_refund"], refund.text
    arguments = refund.arguments()
    assert (arguments["order_id"], arguments["email"], arguments["items"]) == (
        "DD-10234",
        EMAIL,
        ["Margherita"],
    )


async def test_refund_after_looking_up_the_order() -> None:
    messages = [user("Order DD-10234 arrived cold, I want a refund (omar@example.com)")]
    lookup = await respond(messages)
    messages += called(lookup, [ORDER])
    asked = await respond(messages)
    assert asked.calls == []
    assert "Which items" in asked.text and "Margherita, Garlic bread" in asked.text
    messages += [assistant(asked.text), user("the margherita")]
    refund = await respond(messages)
    assert [c.function.name for c in refund.calls] == ["request_refund"]
    arguments = refund.arguments()
    assert (arguments["order_id"], arguments["email"]) == ("DD-10234", EMAIL)
    assert arguments["items"] == ["Margherita"]
    assert "cold" in arguments["reason"]
    refused = {
        "approved": False,
        "rule": "refund_window",
        "message": "Order DD-10234 was delivered more than 30 days ago.",
        "next_step": "Offer a person.",
    }
    messages += called(refund, [refused])
    answer = await respond(messages)
    assert "couldn't refund" in answer.text
    assert "more than 30 days ago" in answer.text
    assert "Offer a person" not in answer.text  # that line is for the model, not the customer


async def test_help_centre_answer_names_the_article() -> None:
    messages = [user("how do refunds work?")]
    search = await respond(messages)
    result = {
        "query": "refunds",
        "results": [
            {
                "article": "Refunds",
                "section": "Window",
                "text": "Ask within 30 days.",
                "article_id": "r",
            }
        ],
        "message": "Answer from these passages only.",
    }
    messages += called(search, [result])
    answer = await respond(messages)
    assert 'article "Refunds"' in answer.text
    assert "Ask within 30 days." in answer.text


async def test_no_help_centre_match_offers_a_ticket() -> None:
    messages = [user("can I pay with bitcoin?")]
    search = await respond(messages)
    messages += called(search, [{"query": "bitcoin", "results": [], "message": "No match."}])
    answer = await respond(messages)
    assert "couldn't find" in answer.text and "ticket" in answer.text


async def test_two_images_are_read_in_parallel_then_both_reported() -> None:
    messages = [user("[Shared image: image://one]\n[Shared image: image://two]")]
    reply = await respond(messages)
    assert [c.arguments for c in (call.function for call in reply.calls)] == [
        '{"image_url": "image://one"}',
        '{"image_url": "image://two"}',
    ]
    assert len({c.id for c in reply.calls}) == 2
    assert all(c.id.startswith("call_") for c in reply.calls)
    assert isinstance(reply.events[-1], Finish) and reply.events[-1].reason == "tool_calls"
    second = {**RECEIPT, "total_in_cents": 500, "currency": "EUR", "date": "2024-06-02"}
    messages += called(reply, [RECEIPT, second])
    answer = await respond(messages)
    assert "$25.99" in answer.text and "€5.00" in answer.text


async def test_local_image_path_with_spaces_is_a_reference(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "my receipts"
    folder.mkdir()
    photo = folder / "lunch receipt.png"
    Image.new("RGB", (8, 8), "white").save(photo)
    reply = await respond([user(f'here it is "{photo}"')])
    assert [c.function.name for c in reply.calls] == ["analyze_receipt_image"]
    assert reply.arguments() == {"image_url": str(photo)}

    # Over the web the same words name no file: the server's disk is never looked at.
    web = [e async for e in OfflineModel().stream([user(f'here it is "{photo}"')], ALL)]
    assert not [e for e in web if isinstance(e, ToolCallReady)]


@pytest.mark.parametrize(
    ("tool_name", "error", "advice"),
    [
        ("analyze_receipt_image", "Error: The image could not be downloaded (HTTP 404).", "photo"),
        (
            "lookup_order",
            "Error: There is no order DD-9. Ask the customer to check.",
            "check the order number",
        ),
        (
            "create_customer_ticket",
            "Error: create_customer_ticket failed (OperationalError: locked). Tell the customer and offer a ticket.",
            "try again",
        ),
    ],
)
async def test_tool_errors_are_explained_with_what_to_do(
    tool_name: str, error: str, advice: str
) -> None:
    call = ToolCall.make("call_1", tool_name, "{}")
    messages = [
        user("something"),
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": "call_1", "content": error},
    ]
    reply = await respond(messages)
    assert reply.calls == []  # no retry loop: the customer decides what next
    assert "Error:" not in reply.text
    assert advice in reply.text
    assert "Tell the customer" not in reply.text


async def test_a_tool_is_not_called_twice_with_the_same_arguments() -> None:
    messages = [user("I'm Omar and I can't log in")]
    ticket = await respond(messages)
    messages += called(ticket, ["Error: the ticket system is down."])
    explained = await respond(messages)
    assert explained.calls == [] and "couldn't file the ticket" in explained.text


# Tools on offer decide the route ------------------------------------------------------------


async def test_without_a_ticket_tool_a_problem_goes_to_the_help_centre() -> None:
    reply = await respond([user("I can't log in")], [TOOLS["search_help_center"]])
    assert [c.function.name for c in reply.calls] == ["search_help_center"]


async def test_without_a_help_centre_a_question_becomes_a_ticket() -> None:
    reply = await respond(
        [user("I'm Omar. how do refunds work?")], [TOOLS["create_customer_ticket"]]
    )
    assert [c.function.name for c in reply.calls] == ["create_customer_ticket"]
    assert "refunds" in reply.arguments()["issue"]


async def test_without_tools_it_says_where_to_go() -> None:
    reply = await respond([user("I can't log in")], [])
    assert reply.calls == []
    assert "Contact us" in reply.text


async def test_without_an_order_tool_a_person_is_asked_for_by_ticket() -> None:
    reply = await respond(
        [user("I'm Omar, get me a human please")], [TOOLS["create_customer_ticket"]]
    )
    assert reply.arguments() == {
        "name": "Omar",
        "issue": "Asked for a person: Get me a human please.",
    }


# The protocol ---------------------------------------------------------------------------------


def test_is_a_chat_model() -> None:
    assert isinstance(OfflineModel(), ChatModel)
    assert "offline" in OfflineModel().name


async def test_streams_words_then_usage_then_finish() -> None:
    reply = await respond([user("hello")])
    deltas = [e for e in reply.events if isinstance(e, TextDelta)]
    assert len(deltas) > 10
    assert all(len(d.text.split()) <= 1 for d in deltas)
    usage, finish = reply.events[-2:]
    assert isinstance(usage, Usage) and usage.prompt_tokens == 1 and usage.completion_tokens > 10
    assert finish == Finish("stop")


async def test_the_offline_notice_comes_once() -> None:
    first = await respond([user("hello")])
    assert first.text.startswith(NOTICE)
    assert "XAI_API_KEY" in first.text and "HELPLINE_BASE_URL" in first.text
    second = await respond([user("hello"), assistant(first.text), user("thanks")])
    assert "XAI_API_KEY" not in second.text


async def test_structured_output_is_refused_clearly() -> None:
    with pytest.raises(ModelError, match="XAI_API_KEY"):
        [e async for e in OfflineModel().stream([user("hi")], response_format=ResponseFormat("r"))]


async def test_reads_multimodal_user_content() -> None:
    content = [
        {"type": "text", "text": "my receipt"},
        {"type": "image_url", "image_url": {"url": "image://deadbeef", "detail": "high"}},
    ]
    reply = await respond([{"role": "user", "content": content}])
    assert reply.arguments() == {"image_url": "image://deadbeef"}
