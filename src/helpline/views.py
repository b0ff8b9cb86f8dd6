"""Human-readable terminal views of transcripts, tickets and receipts (colour only on a terminal)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from helpline.store import TicketInfo

if TYPE_CHECKING:
    from helpline.receipts import Receipt

_ROLE_STYLE = {"system": "magenta", "user": "green", "assistant": "cyan", "tool": "yellow"}
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Embeddings, overrides, isolates and marks: each reorders the text after it on screen."""


def _shown(text: str) -> str:
    """Text someone wrote, for the terminal: markup escaped, and each bidirectional control
    written as its code (``[U+202E]``) so the text reads in the order it was written."""
    return escape(_BIDI_CONTROLS.sub(lambda control: f"[U+{ord(control.group()):04X}]", text))


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part.get("type") == "text":
            parts.append(part["text"])
        elif part.get("type") == "image_url":
            url = part["image_url"]["url"]
            parts.append(f"[image: {url[:60]}…]" if len(url) > 60 else f"[image: {url}]")
    return "\n".join(parts)


def print_messages(console: Console, messages: list[dict[str, Any]]) -> None:
    for index, message in enumerate(messages):
        role = message["role"]
        header = f"[bold {_ROLE_STYLE.get(role, 'white')}]#{index} {role}[/]"
        if message.get("name"):
            header += f" [dim]({_shown(message['name'])})[/]"
        if role == "tool":
            header += f" [dim](answers {escape(message['tool_call_id'])})[/]"
        console.print(header)
        if previous := message.get("previous_response_id"):
            console.print(f"[dim]{escape(_continued(messages[:index], previous))}[/]")
        text = _content_text(message.get("content"))
        if text:
            console.print(_shown(text))
        for call in message.get("tool_calls") or ():
            function = call["function"]
            console.print(
                f"[yellow]→ {escape(function['name'])}[/]({_shown(function['arguments'])})"
                f" [dim]{escape(call['id'])}[/]"
            )
        console.print()


def _continued(before: list[dict[str, Any]], response_id: str) -> str:
    """What the request for a reply sent when it continued a stored response."""
    after = next(
        (i for i in range(len(before) - 1, -1, -1) if before[i].get("response_id") == response_id),
        None,
    )
    since = f" after #{after}" if after is not None else ""
    return f"(sent with previous_response_id {response_id}: only the messages{since})"


def print_transcript(conversation_id: str, messages: list[dict[str, Any]]) -> None:
    console = Console(highlight=False)
    console.print(f"[bold]Conversation {conversation_id}[/] · {len(messages)} messages\n")
    print_messages(console, messages)
    console.print("[dim]`helpline transcript --json` prints the exact messages array.[/]")


def print_tickets(tickets: list[TicketInfo]) -> None:
    console = Console(highlight=False)
    if not tickets:
        console.print("No tickets yet.")
        return
    table = Table("#", "status", "category", "name", "issue", "created", "conversation")
    for t in tickets:
        table.add_row(
            str(t.id),
            t.status,
            t.category,
            _shown(t.name),
            _shown(t.issue if len(t.issue) <= 60 else t.issue[:59] + "…"),
            t.created_at.strftime("%Y-%m-%d %H:%M"),
            t.conversation_id or "",
        )
    console.print(table)


def print_ticket(ticket: TicketInfo, messages: list[dict[str, Any]]) -> None:
    console = Console(highlight=False)
    console.print(f"[bold]Ticket #{ticket.id}[/] · {ticket.status} · {ticket.category}")
    console.print(f"Customer: {_shown(ticket.name)}")
    console.print(f"Issue: {_shown(ticket.issue)}")
    if ticket.amount_cents is not None:
        console.print(f"Amount: {ticket.amount_cents / 100:.2f}")
    console.print(
        f"Created: {ticket.created_at:%Y-%m-%d %H:%M} · updated {ticket.updated_at:%Y-%m-%d %H:%M}"
    )
    if messages:
        console.print(f"\n[bold]Conversation {ticket.conversation_id}[/]\n")
        print_messages(console, [m for m in messages if m["role"] != "system"])


def print_receipt(receipt: Receipt) -> None:
    console = Console(highlight=False)

    def money(cents: int) -> str:
        return f"{cents / 100:,.2f} {receipt.currency}"

    table = Table("item", "qty", "price", title=f"Receipt · {receipt.date or 'date unreadable'}")
    for item in receipt.items:
        table.add_row(_shown(item.name), str(item.quantity), money(item.price_in_cents))
    if receipt.items:
        console.print(table)
    else:
        console.print(f"[bold]Receipt[/] · {receipt.date or 'date unreadable'} · items unreadable")
    console.print(f"[bold]Total: {money(receipt.total_in_cents)}[/]")
