"""The support desk over real HTTP and the command line, on SQLite and PostgreSQL: agents'
own keys, every action in the audit log with the agent's name, and refunds approved once."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from helpline.app import build_assistant
from helpline.cli import app as cli
from helpline.config import Settings
from helpline.server import create_app
from helpline.server.testing import LiveServer, parse_sse
from helpline.store import Refund, Store
from helpline.support.demo import seed_demo_orders
from tests.test_approvals import Customer, _order

ADMIN = "operators-only-key"
REFUND_LINE = "Order DD-10231, email omar@example.com: the Margherita Pizza arrived cold, refund it"


@dataclass
class Desk:
    store: Store
    url: str
    http: httpx.Client
    keys: dict[str, str]

    def as_agent(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}

    def chat(self) -> dict[str, str]:
        created = self.http.post(self.url + "/api/conversations")
        assert created.status_code == 201
        return dict(created.json())

    def say(self, chat: dict[str, str], line: str) -> str:
        response = self.http.post(
            f"{self.url}/api/conversations/{chat['id']}/messages",
            headers={"Authorization": f"Bearer {chat['token']}"},
            json={"text": line},
        )
        assert response.status_code == 200, response.text
        return "".join(e.data["delta"] for e in parse_sse(response.text) if e.event == "text")

    def messages(self, chat: dict[str, str]) -> list[dict[str, Any]]:
        response = self.http.get(
            f"{self.url}/api/conversations/{chat['id']}",
            headers={"Authorization": f"Bearer {chat['token']}"},
        )
        return list(response.json()["messages"])


@pytest.fixture
def desk(store: Store) -> Iterator[Desk]:
    """A live server with the offline assistant, the demo orders and two named agents."""
    settings = Settings(admin_key=ADMIN)
    seed_demo_orders(store)
    keys = {name: store.agents.add(name)[1] for name in ("Mei Ling", "Dan")}
    keys["operator"] = ADMIN
    assistant = build_assistant(settings, store=store)
    with LiveServer(create_app(assistant, settings)) as server, httpx.Client(timeout=30) as http:
        yield Desk(store, server.url, http, keys)


def test_agents_sign_in_with_their_own_keys(desk: Desk) -> None:
    me = desk.http.get(desk.url + "/api/agents/me", headers=desk.as_agent("Mei Ling"))
    assert me.json() == {"name": "Mei Ling", "operator": False}
    operator = desk.http.get(desk.url + "/api/agents/me", headers=desk.as_agent("operator"))
    assert operator.json() == {"name": "operator", "operator": True}
    wrong = desk.http.get(
        desk.url + "/api/tickets", headers={"Authorization": "Bearer hlagent_" + "x" * 43}
    )
    assert wrong.status_code == 403 and "agent key is not known" in wrong.json()["error"]["message"]
    chat = desk.chat()
    as_customer = desk.http.get(
        desk.url + "/api/approvals", headers={"Authorization": f"Bearer {chat['token']}"}
    )
    assert as_customer.status_code == 403
    assert desk.http.get(desk.url + "/api/audit").status_code == 401
    # an agent's key opens tickets and any conversation, as the admin key does
    tickets = desk.http.get(desk.url + "/api/tickets", headers=desk.as_agent("Dan"))
    assert tickets.status_code == 200
    read = desk.http.get(f"{desk.url}/api/conversations/{chat['id']}", headers=desk.as_agent("Dan"))
    assert read.status_code == 200
    with desk.http.stream("GET", desk.url + "/api/events", headers=desk.as_agent("Dan")) as events:
        assert events.status_code == 200  # the page's live stream of every conversation
    # a removed agent's key stops working at once
    temp = desk.store.agents.add("Temp")[1]
    assert desk.store.agents.remove("temp") and not desk.store.agents.remove("Nobody")
    gone = desk.http.get(desk.url + "/api/tickets", headers={"Authorization": f"Bearer {temp}"})
    assert gone.status_code == 403
    # keys are stored only as their hashes
    with desk.store.engine.connect() as connection:
        stored = connection.execute(text("SELECT key_hash FROM agents")).scalars().all()
    assert len(stored) == 2 and not {desk.keys["Dan"], desk.keys["Mei Ling"]} & set(stored)


def test_every_action_is_audited_with_the_agents_name(desk: Desk) -> None:
    chat = desk.chat()
    desk.say(chat, "I'm Omar and I can't log in, please file a ticket")
    conversation = f"{desk.url}/api/conversations/{chat['id']}"
    mei, dan, operator = (desk.as_agent(n) for n in ("Mei Ling", "Dan", "operator"))
    assert desk.http.patch(
        conversation, headers=mei, json={"status": "waiting_for_agent"}
    ).is_success
    reply = desk.http.post(conversation + "/replies", headers=mei, json={"text": "I'm on it."})
    assert reply.status_code == 201
    assert desk.http.patch(conversation, headers=dan, json={"status": "active"}).is_success
    (ticket,) = desk.store.tickets.find(conversation_id=chat["id"])
    patched = desk.http.patch(
        f"{desk.url}/api/tickets/{ticket.id}", headers=operator, json={"status": "resolved"}
    )
    assert patched.json()["status"] == "resolved"
    log = desk.http.get(
        desk.url + "/api/audit", params={"conversation_id": chat["id"]}, headers=dan
    ).json()["entries"]
    assert [(e["agent"], e["action"]) for e in log] == [
        ("Mei Ling", "take_over"),
        ("Mei Ling", "reply"),
        ("Dan", "hand_back"),
        ("operator", "ticket_status"),
    ]
    # a reply to a chat the assistant has takes it over, and says so
    taken = desk.http.post(conversation + "/replies", headers=dan, json={"text": "Dan here."})
    assert taken.status_code == 201
    log = desk.http.get(
        desk.url + "/api/audit", params={"conversation_id": chat["id"]}, headers=dan
    ).json()["entries"]
    assert [(e["agent"], e["action"]) for e in log[4:]] == [("Dan", "take_over"), ("Dan", "reply")]
    assert log[1]["detail"] == {"message_id": reply.json()["message_id"]}
    assert desk.http.delete(conversation, headers=dan).status_code == 204
    after = desk.http.get(
        desk.url + "/api/audit", params={"conversation_id": chat["id"]}, headers=dan
    ).json()["entries"]
    assert after[-1]["action"] == "delete_conversation" and len(after) == 7  # the log stays
    empty = desk.http.post(conversation + "/replies", headers=mei, json={"text": "hello?"})
    assert empty.status_code == 404  # deleted: nothing to reply to, and nothing audited


def test_a_customer_is_told_in_their_chat_when_an_agent_approves(desk: Desk) -> None:
    chat = desk.chat()
    answer = desk.say(chat, REFUND_LINE)
    assert "awaits approval by a person" in answer
    queue = desk.http.get(
        desk.url + "/api/approvals", params={"status": "pending"}, headers=desk.as_agent("Dan")
    ).json()["approvals"]
    (pending,) = queue
    assert pending["conversation_id"] == chat["id"] and pending["amount_cents"] == 1150
    assert pending["rules"] == ["customer_not_verified"]
    approve = f"{desk.url}/api/approvals/{pending['id']}/approve"
    as_operator = desk.http.post(approve, headers=desk.as_agent("operator"))
    assert (
        as_operator.status_code == 403 and "named agent" in as_operator.json()["error"]["message"]
    )
    decided = desk.http.post(approve, headers=desk.as_agent("Mei Ling"))
    assert decided.status_code == 200, decided.text
    assert decided.json()["customer_told"] is True
    assert decided.json()["approval"]["decided_by"] == "Mei Ling"
    # the customer left and came back: the note is in their chat, from the team
    note = desk.messages(chat)[-1]
    assert note["name"] == "agent" and "approved by our support team" in note["content"]
    again = desk.http.post(approve, headers=desk.as_agent("Dan"))
    assert again.status_code == 409 and "approved by Mei Ling" in again.json()["error"]["message"]
    order = desk.store.orders.get("DD-10231")
    assert order is not None and order.refunded_cents == 1150
    # the assistant still answers the customer afterwards
    assert desk.say(chat, "thanks, what are your opening hours?")


def test_a_rejection_over_http_says_why(desk: Desk) -> None:
    chat = desk.chat()
    desk.say(chat, REFUND_LINE)
    (pending,) = desk.store.approvals.find(status="pending")
    reject = f"{desk.url}/api/approvals/{pending.id}/reject"
    blank = desk.http.post(reject, headers=desk.as_agent("Dan"), json={"reason": "  "})
    assert blank.status_code == 400 and "Say why" in blank.json()["error"]["message"]
    missing = desk.http.post(reject, headers=desk.as_agent("Dan"), json={})
    assert missing.status_code == 422 and "reason" in missing.json()["error"]["message"]
    done = desk.http.post(
        reject, headers=desk.as_agent("Dan"), json={"reason": "The photo shows a different order"}
    )
    assert done.json()["approval"]["status"] == "rejected"
    assert "The photo shows a different order." in desk.messages(chat)[-1]["content"]
    unknown = desk.http.post(
        f"{desk.url}/api/approvals/99999/approve", headers=desk.as_agent("Dan")
    )
    assert unknown.status_code == 404 and "no approval #99999" in unknown.json()["error"]["message"]
    huge = desk.http.post(f"{desk.url}/api/approvals/{2**40}/approve", headers=desk.as_agent("Dan"))
    assert huge.status_code == 422
    bad_status = desk.http.get(
        desk.url + "/api/approvals", params={"status": "done"}, headers=desk.as_agent("Dan")
    )
    assert bad_status.status_code == 422


def test_an_approval_gives_its_amount_as_customers_read_it(desk: Desk) -> None:
    """A yen refund has no cents: agents must read ¥2,450, not ¥24.50 (or ¥25)."""
    refund = Refund("Bento Box", 1, 2450, "spilled")
    desk.store.approvals.queue(
        conversation_id=None,
        request_id=None,
        ticket_id=None,
        order_id="JP-1",
        currency="JPY",
        refunds=[refund],
        rules=["over_limit"],
        why="it is in JPY, not EUR",
    )
    (listed,) = desk.http.get(desk.url + "/api/approvals", headers=desk.as_agent("Dan")).json()[
        "approvals"
    ]
    assert (listed["amount_cents"], listed["amount"]) == (2450, "¥2,450")


def test_two_agents_clicking_approve_at_once_pay_once(desk: Desk) -> None:
    """Each round, two agents' browsers post the approval at the same moment."""
    for round_number in range(5):
        order_id = f"DD-R{round_number}"
        desk.store.orders.add(_order(order_id))
        customer = Customer(desk.store)
        queued = _run(customer.refund(["Family Pizza"], order_id=order_id))
        statuses = _approve_at_once(desk, queued["approval_id"], ["Dan", "Mei Ling"])
        assert sorted(statuses) == [200, 409]
        order = desk.store.orders.get(order_id)
        assert order is not None and order.refunded_cents == 2450
        notes = customer.store.conversations.messages(customer.conversation_id)
        assert sum(1 for m in notes if m.get("name") == "agent") == 1
        audited = desk.store.audit.find(conversation_id=customer.conversation_id)
        assert [e.action for e in audited] == ["approve"]


def _approve_at_once(desk: Desk, approval_id: int, agents: list[str]) -> list[int]:
    """Each agent posts the approval on their own connection, all at the same moment."""
    barrier = threading.Barrier(len(agents))
    statuses: list[int] = []

    def click(agent: str) -> None:
        with httpx.Client(timeout=30) as own:
            barrier.wait()
            response = own.post(
                f"{desk.url}/api/approvals/{approval_id}/approve", headers=desk.as_agent(agent)
            )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=click, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_the_command_line_desk(store: Store) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    runner = CliRunner()

    def helpline(*args: str) -> Any:
        return runner.invoke(cli, [*args, "--database-url", url])

    added = helpline("agents", "add", "Mei Ling", "--json")
    assert added.exit_code == 0
    key = json.loads(added.stdout)["key"]
    assert store.agents.by_key(key) is not None
    store.orders.add(_order())
    customer = Customer(store)
    queued = _run(customer.refund(["Family Pizza"]))
    listed = json.loads(helpline("approvals", "list", "--json").stdout)
    assert [a["id"] for a in listed] == [queued["approval_id"]]
    unknown = helpline("approvals", "approve", str(queued["approval_id"]), "--agent", "Nobody")
    assert unknown.exit_code == 1 and "helpline agents add" in unknown.stderr
    approved = helpline("approvals", "approve", str(queued["approval_id"]), "--agent", "mei ling")
    assert approved.exit_code == 0 and "€24.50 refunded on order DD-1" in approved.stdout
    twice = helpline(
        "approvals", "reject", str(queued["approval_id"]), "--agent", "Mei Ling", "--reason", "no"
    )
    assert twice.exit_code == 1 and "approved by Mei Ling already" in twice.stderr
    log = json.loads(helpline("audit", "--conversation", customer.conversation_id, "--json").stdout)
    assert [(e["agent"], e["action"]) for e in log] == [("Mei Ling", "approve")]
    people = helpline("audit")
    assert "Mei Ling" in people.stdout and "approved refund" in people.stdout


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)
