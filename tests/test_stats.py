"""The desk's numbers against a seeded set of conversations whose answers are known, on SQLite
and PostgreSQL: from the store, from `helpline stats` and from `GET /api/stats`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from typer.testing import CliRunner, Result

from helpline.assistant import Assistant
from helpline.cli import app
from helpline.config import Settings
from helpline.models.scripted import ScriptedModel
from helpline.server import create_app
from helpline.server.testing import LiveServer
from helpline.store import Store
from helpline.store.ratings import StoredRating
from helpline.store.tables import Conversation, StoredMessage, Ticket, TurnUsage

T = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
OLD = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)
SINCE = "2026-10-15"
ADMIN = "stats-admin-key"


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _answer(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def _agent(text: str) -> dict[str, Any]:
    return {"role": "assistant", "name": "agent", "content": text}


def _call(call_id: str, name: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}
        ],
    }


def _result(call_id: str, content: Any) -> dict[str, Any]:
    text = content if isinstance(content, str) else json.dumps(content)
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _search(article: str) -> dict[str, Any]:
    return {"query": "q", "results": [{"article": article, "section": "", "text": "…"}]}


# Each conversation: its id, when it started, its messages (offset from the start, wire),
# a handoff ticket's offset, a rating (score, offset), its usage rows and its first line's
# intent (none for c11 and c12: no intent matched).
SEEDED: list[dict[str, Any]] = [
    {  # resolved, rated 5; one help-centre search
        "id": "c1",
        "intent": "refund_policy",
        "at": T,
        "messages": [
            (0, _user("what is your refund policy?")),
            (2, _call("k1", "search_help_center")),
            (2, _result("k1", _search("Refund policy"))),
            (2, _answer("From the refund policy: …")),
        ],
        "rating": (5, 30),
        "usage": [(100, 20, 30, 5, 0.0012)],
    },
    {  # handed off by the assistant; a person replies 60 s after the handoff
        "id": "c2",
        "intent": "human_agent",
        "at": T,
        "messages": [
            (0, _user("I want a person")),
            (4, _call("h1", "escalate_to_human")),
            (4, _result("h1", {"status": "waiting_for_agent", "ticket_id": 1})),
            (4, _answer("A person will reply here.")),
            (70, _agent("Hi, I'm Ana from the team.")),
        ],
        "handoff": 10,
        "usage": [(200, 0, 50, 0, 0.003)],
    },
    {  # rated 2: not resolved
        "id": "c3",
        "intent": "late_delivery",
        "at": T,
        "messages": [(0, _user("my order is late")), (6, _answer("Sorry …"))],
        "rating": (2, 60),
    },
    {  # the customer came back two hours later: reopened
        "id": "c4",
        "intent": "promo_code",
        "at": T,
        "messages": [
            (0, _user("my code does not work")),
            (8, _answer("Try this …")),
            (7200, _user("it still doesn't work")),
            (7201, _answer("Let me …")),
        ],
    },
    {  # rated 4, then wrote again: reopened
        "id": "c5",
        "intent": "late_delivery",
        "at": T,
        "messages": [
            (0, _user("where is my food")),
            (10, _answer("On its way")),
            (30, _user("now it's late again")),
        ],
        "rating": (4, 20),
    },
    {  # a second message half an hour later is the same visit; one failed look-up
        "id": "c6",
        "intent": "refund_policy",
        "at": T,
        "messages": [
            (0, _user("refunds?")),
            (1, _call("k2", "search_help_center")),
            (1, _result("k2", _search("Refund policy"))),
            (1, _call("o1", "lookup_order")),
            (1, _result("o1", "Error: There is no order DD-1 for a@b.c.")),
            (1, _answer("…")),
            (1800, _user("and delivery fees?")),
            (1801, _answer("…")),
        ],
    },
    {  # a person took over without a handoff: handed off, but no handoff time to measure
        "id": "c7",
        "intent": "greeting",
        "at": T,
        "messages": [(0, _user("hello")), (3, _answer("Hi!")), (50, _agent("Hello from Ana"))],
    },
    {  # came back after more than 24 hours: a new visit, the first one stays resolved
        "id": "c10",
        "intent": "payment_methods",
        "at": T,
        "messages": [
            (0, _user("how do I pay")),
            (5, _answer("By card …")),
            (30 * 3600, _user("another question")),
        ],
    },
    {  # a signed-in customer who starts another conversation three hours later came back
        "id": "c11",
        "at": T,
        "customer": "cust-1",
        "messages": [(0, _user("my voucher is missing")), (7, _answer("Let me see …"))],
    },
    {  # that next conversation: resolved
        "id": "c12",
        "at": T + timedelta(hours=3),
        "customer": "cust-1",
        "messages": [(0, _user("still no voucher")), (9, _answer("Here it is …"))],
    },
    {  # before --since: rated 1, 100 s to answer
        "id": "c8",
        "intent": "refund_policy",
        "at": OLD,
        "messages": [(0, _user("old problem")), (100, _answer("…"))],
        "rating": (1, 200),
        "usage": [(1000, 0, 100, 0, 0.5)],
    },
    {  # the page was opened but the customer never wrote: not counted
        "id": "c9",
        "at": T,
        "messages": [],
    },
]


def seed(store: Store) -> None:
    with store.engine.begin() as connection:
        for c in SEEDED:
            start = c["at"]
            connection.execute(
                insert(Conversation).values(
                    id=c["id"],
                    customer_id=c.get("customer"),
                    intent=c.get("intent"),
                    created_at=start,
                    updated_at=start + _s(max((o for o, _w in c["messages"]), default=0)),
                    status="waiting_for_agent" if "handoff" in c else "active",
                    prompt_tokens=0,
                    completion_tokens=0,
                    message_count=len(c["messages"]) + 1,
                )
            )
            rows = [{"role": "system", "content": "prompt"}] + [w for _o, w in c["messages"]]
            offsets = [0] + [o for o, _w in c["messages"]]
            connection.execute(
                insert(StoredMessage),
                [
                    {
                        "conversation_id": c["id"],
                        "position": i,
                        "role": wire["role"],
                        "wire": wire,
                        "created_at": start + _s(offset),
                    }
                    for i, (offset, wire) in enumerate(zip(offsets, rows, strict=True))
                ],
            )
            if "handoff" in c:
                connection.execute(
                    insert(Ticket).values(
                        conversation_id=c["id"],
                        name="Unknown customer",
                        issue="Asked for a person",
                        category="handoff",
                        status="open",
                        created_at=start + _s(c["handoff"]),
                        updated_at=start + _s(c["handoff"]),
                    )
                )
            if "rating" in c:
                score, offset = c["rating"]
                connection.execute(
                    insert(StoredRating).values(
                        conversation_id=c["id"], score=score, created_at=start + _s(offset)
                    )
                )
            for prompt, cached, completion, reasoning, cost in c.get("usage", []):
                connection.execute(
                    insert(TurnUsage).values(
                        conversation_id=c["id"],
                        model="grok-4",
                        prompt_tokens=prompt,
                        cached_tokens=cached,
                        completion_tokens=completion,
                        reasoning_tokens=reasoning,
                        cost_usd=cost,
                        left_out=0,
                        created_at=start,
                    )
                )


EXPECTED_SINCE = {
    "conversations": 10,  # c1-c7, c10-c12; c8 is older, c9 has no customer message
    "resolved_by_assistant": 4,  # c1, c6, c10, c12
    "resolution_rate": 0.4,
    "handoffs": 2,  # c2 (handoff ticket), c7 (a person wrote)
    "handoff_rate": 0.2,
    "reopened": 3,  # c4 (after two hours), c5 (after rating), c11 (in another conversation)
    "median_seconds_to_first_answer": 5.5,  # 1 2 3 4 5 | 6 7 8 9 10
    "median_seconds_to_agent_reply": 60.0,  # c2: handoff at 10 s, a person at 70 s
    "ratings": 3,
    "csat_average": 3.67,  # 5, 2, 4
    "csat_distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1},
    "top_intents": [  # most conversations first, then by name; c8's is older
        {"intent": "late_delivery", "conversations": 2},
        {"intent": "refund_policy", "conversations": 2},
        {"intent": "greeting", "conversations": 1},
        {"intent": "human_agent", "conversations": 1},
        {"intent": "payment_methods", "conversations": 1},
        {"intent": "promo_code", "conversations": 1},
    ],
    "top_articles": [{"article": "Refund policy", "count": 2}],
    "tool_calls": 4,
    "tool_errors": 1,
    "prompt_tokens": 300,
    "cached_tokens": 20,
    "completion_tokens": 80,
    "reasoning_tokens": 5,
    "cost_usd": 0.0042,
}


def assert_seeded_numbers(numbers: dict[str, Any]) -> None:
    for key, value in EXPECTED_SINCE.items():
        if isinstance(value, float):
            assert numbers[key] == pytest.approx(value), key
        else:
            assert numbers[key] == value, key
    tools = {t["tool"]: (t["calls"], t["errors"]) for t in numbers["top_tools"]}
    assert tools == {
        "search_help_center": (2, 0),
        "lookup_order": (1, 1),
        "escalate_to_human": (1, 0),
    }
    assert numbers["by_day"] == [
        {"day": "2026-11-01", "conversations": 10, "resolved_by_assistant": 4, "handoffs": 2}
    ]


def test_the_numbers_of_a_seeded_desk(store: Store) -> None:
    seed(store)
    assert_seeded_numbers(
        dataclasses.asdict(store.stats.compute(datetime(2026, 10, 15, tzinfo=UTC)))
    )

    everything = store.stats.compute()
    assert everything.conversations == 11
    assert everything.csat_average == 3.0  # 5, 2, 4, 1
    assert everything.csat_distribution["1"] == 1
    assert everything.median_seconds_to_first_answer == 6.0  # 1 2 3 4 5 [6] 7 8 9 10 100
    assert everything.cost_usd == pytest.approx(0.5042)
    assert everything.top_intents[0] == {"intent": "refund_policy", "conversations": 3}
    assert [d["day"] for d in everything.by_day] == ["2026-10-01", "2026-11-01"]


def test_an_empty_desk_has_no_rates(store: Store) -> None:
    numbers = store.stats.compute()
    assert numbers.conversations == 0
    assert numbers.handoff_rate is None and numbers.csat_average is None
    assert numbers.median_seconds_to_first_answer is None
    assert numbers.csat_distribution == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}
    assert numbers.cost_usd == 0 and numbers.by_day == []
    assert numbers.top_intents == []


def _helpline(url: str, *args: str) -> Result:
    """The command in this process (its own database connection), output captured."""
    return CliRunner().invoke(app, [*args, "--database-url", url], env={"NO_COLOR": "1"})


def test_helpline_stats_prints_the_seeded_numbers(store: Store) -> None:
    seed(store)
    url = store.engine.url.render_as_string(hide_password=False)

    as_json = _helpline(url, "stats", "--since", SINCE, "--json")
    assert as_json.exit_code == 0, as_json.output
    assert_seeded_numbers(json.loads(as_json.stdout))

    table = _helpline(url, "stats", "--since", SINCE)
    assert table.exit_code == 0, table.output
    assert "Since 2026-10-15" in table.stdout
    assert "4 (40%)" in table.stdout  # resolved by the assistant
    assert "3.67 of 5 (3 ratings" in table.stdout
    assert "Refund policy (2)" in table.stdout
    assert "Top intents" in table.stdout and "late_delivery (2)," in table.stdout
    assert "1 of 4 calls" in table.stdout

    bad = _helpline(url, "stats", "--since", "last week")
    assert bad.exit_code == 1
    assert "ISO date" in bad.stderr and "\x1b[" not in bad.stderr


@pytest.fixture
def server(store: Store) -> Iterator[LiveServer]:
    assistant = Assistant(ScriptedModel(), store, [], "prompt")
    with LiveServer(create_app(assistant, Settings(admin_key=ADMIN))) as live:
        yield live


def test_the_stats_endpoint_serves_the_numbers_to_agents(store: Store, server: LiveServer) -> None:
    seed(store)
    url = server.url + "/api/stats"
    agent = {"Authorization": f"Bearer {ADMIN}"}

    response = httpx.get(url, params={"since": SINCE}, headers=agent)
    assert response.status_code == 200, response.text
    body = response.json()
    assert_seeded_numbers(body)
    comments = [(r["conversation_id"], r["score"]) for r in body["recent_ratings"]]
    assert sorted(comments) == [("c1", 5), ("c3", 2), ("c5", 4)]

    _ana, ana_key = store.agents.add("Ana")
    by_agent = httpx.get(url, headers={"Authorization": f"Bearer {ana_key}"})
    assert by_agent.status_code == 200 and by_agent.json()["conversations"] == 11

    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
    bad = httpx.get(url, params={"since": "yesterday"}, headers=agent)
    assert bad.status_code == 422 and "since" in bad.json()["error"]["message"]
