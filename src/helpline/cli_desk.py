"""``helpline approvals``, ``helpline agents`` and ``helpline audit``: the support desk's
money decisions, its named agents, and the record of what each of them did."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from helpline.cli_options import DatabaseOption, JsonOption

if TYPE_CHECKING:
    from helpline.desk import Desk
    from helpline.store import ApprovalInfo, AuditEntry, Store

approvals_app = typer.Typer(
    help="Refunds waiting for a person: list, approve, reject.", no_args_is_help=True
)
agents_app = typer.Typer(
    help="The support team's named agents and their keys.", no_args_is_help=True
)

AgentOption = Annotated[
    str, typer.Option("--agent", help="Your name as an agent (see `helpline agents add`).")
]


def _store(database_url: str | None) -> Store:
    from helpline.cli import _open_store, _settings

    return _open_store(_settings(database_url=database_url))


def open_desk(database_url: str | None) -> Desk:
    """The desk over the configured database, its refunds recorded in its orders."""
    return desk_over(_store(database_url))


def desk_over(store: Store) -> Desk:
    from helpline.desk import Desk

    return Desk(store)


def acting_agent(store: Store, name: str | None) -> str:
    """Who acts: a known agent's name as stored, or the operator when none is given."""
    from helpline.cli import _fail
    from helpline.store.agents import OPERATOR

    if name is None:
        return OPERATOR
    agent = store.agents.get(name)
    if agent is None:
        _fail(f"There is no agent called {name!r}. Add one with `helpline agents add {name!r}`.")
    return agent.name


def run_action(action: Any, *args: Any) -> Any:
    """Run a desk action; its refusal is printed as an error (exit status 1)."""
    from helpline.cli import _fail
    from helpline.desk import DeskError

    try:
        return action(*args)
    except DeskError as exc:
        _fail(str(exc))


def approval_data(approval: ApprovalInfo) -> dict[str, Any]:
    """An approval as scripts (and the HTTP API) read it."""
    data = asdict(approval)
    data["refunds"] = [
        {
            "item": r.item_name,
            "quantity": r.quantity,
            "amount_cents": r.amount_cents,
            "reason": r.reason,
        }
        for r in approval.refunds
    ]
    return data


def audit_data(entry: AuditEntry) -> dict[str, Any]:
    return asdict(entry)


@approvals_app.command("list")
def approvals_list(
    status: Annotated[
        str,
        typer.Option(
            "--status", help="pending (default), approving, approved, rejected, failed or all."
        ),
    ] = "pending",
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Refunds waiting for a person (oldest first), or those decided."""
    from helpline.cli import _fail, _print_json

    store = _store(database_url)
    try:
        found = store.approvals.find(status=None if status == "all" else status)
    except ValueError as exc:
        _fail(f"{exc}, or all.")
    if json_output:
        _print_json([approval_data(a) for a in found])
        return
    from helpline.views_desk import print_approvals

    print_approvals(found, status)


@approvals_app.command("approve")
def approvals_approve(
    approval_id: Annotated[int, typer.Argument(help="The approval's number.")],
    agent: AgentOption,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Approve a refund: it is recorded, and the customer is told in their chat."""
    from helpline.cli import _report

    desk = open_desk(database_url)
    decision = run_action(desk.approve, acting_agent(desk.store, agent), approval_id)
    approval = decision.approval
    _report(
        json_output,
        {**approval_data(approval), "customer_told": decision.customer_told},
        _decided_sentence(approval, decision.customer_told),
    )


@approvals_app.command("reject")
def approvals_reject(
    approval_id: Annotated[int, typer.Argument(help="The approval's number.")],
    agent: AgentOption,
    reason: Annotated[str, typer.Option("--reason", help="Why; the customer is told.")],
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Reject a refund: nothing is paid, and the customer is told why."""
    from helpline.cli import _report

    desk = open_desk(database_url)
    decision = run_action(desk.reject, acting_agent(desk.store, agent), approval_id, reason)
    _report(
        json_output,
        {**approval_data(decision.approval), "customer_told": decision.customer_told},
        _decided_sentence(decision.approval, decision.customer_told),
    )


def _decided_sentence(approval: ApprovalInfo, told: bool) -> str:
    from helpline.money import format_money

    money = format_money(approval.amount_cents, approval.currency)
    what = {
        "approved": f"Approved: {money} refunded on order {approval.order_id}.",
        "rejected": f"Rejected: nothing refunded on order {approval.order_id}.",
    }.get(approval.status, f"Not refunded: {approval.decision_note}")
    told_them = (
        " The customer is told in their chat."
        if told
        else " The customer could not be told (the conversation is gone or busy)."
    )
    return f"Approval #{approval.id}. {what}{told_them}"


@agents_app.command("add")
def agents_add(
    name: Annotated[str, typer.Argument(help="The agent's name, as the audit log shows it.")],
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add an agent and print their key, once (only its hash is stored)."""
    from helpline.cli import _fail, _report
    from helpline.store import AgentNameTaken

    store = _store(database_url)
    try:
        agent, key = store.agents.add(name)
    except AgentNameTaken as exc:
        _fail(f"{exc}. Choose another name.")
    except ValueError as exc:
        _fail(str(exc))
    _report(
        json_output,
        {"name": agent.name, "key": key},
        f"Agent {agent.name} added. Their key, shown only this once (they sign in to /agents "
        f"with it):\n{key}",
    )


@agents_app.command("remove")
def agents_remove(
    name: Annotated[str, typer.Argument(help="The agent's name.")],
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Remove an agent: their key stops working at once (what they did stays in the audit log)."""
    from helpline.cli import _fail, _report

    if not _store(database_url).agents.remove(name):
        _fail(f"There is no agent called {name!r}. See them with `helpline agents list`.")
    _report(json_output, {"removed": name}, f"Agent {name} removed; their key no longer works.")


@agents_app.command("list")
def agents_list(database_url: DatabaseOption = None, json_output: JsonOption = False) -> None:
    """The agents, by name (their keys are never shown again)."""
    from helpline.cli import _print_json

    agents = _store(database_url).agents.all()
    if json_output:
        _print_json([asdict(a) for a in agents])
        return
    for agent in agents:
        typer.echo(f"{agent.name}\tadded {agent.created_at:%Y-%m-%d}")
    if not agents:
        typer.echo("No agents yet. Add one with `helpline agents add NAME`.")


def audit(
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="Only what was done in this conversation.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 200,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """What agents did (replies, takeovers, hand-backs, status changes, deletions, approvals,
    rejections), who did it and when, oldest first."""
    from helpline.cli import _print_json

    entries = _store(database_url).audit.find(conversation_id=conversation, limit=limit)
    if json_output:
        _print_json([audit_data(e) for e in entries])
        return
    from helpline.views_desk import print_audit

    print_audit(entries)
