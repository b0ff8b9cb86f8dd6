"""A conversation's transcript: what its last request sent, what it left out, what it cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from helpline.store import Store, UsageTotals


@dataclass(frozen=True)
class Transcript:
    """``messages``: the last request's messages exactly as sent, and the answer after them;
    ``left_out``: the history messages that request left out (a note stood in for them)."""

    conversation_id: str
    messages: list[dict[str, Any]]
    left_out: list[dict[str, Any]]
    usage: UsageTotals

    def as_json(self) -> dict[str, Any]:
        shown = {
            "conversation_id": self.conversation_id,
            "messages": self.messages,
            "left_out": self.left_out,
            "usage": self.usage.as_dict(),
        }
        from helpline.models.openai_responses import last_request

        if (sent := last_request(self.messages)) is not None:
            shown["responses_request"] = sent  # the Responses API's input items, as sent
        return shown


def read_transcript(store: Store, conversation_id: str) -> Transcript:
    """The conversation as its last request saw it (every message when nothing was left out)."""
    history = store.conversations.messages(conversation_id)
    latest = store.usage.latest(conversation_id)
    totals = store.usage.for_conversation(conversation_id)
    if latest is None or not latest.left_out or latest.context_note is None:
        return Transcript(conversation_id, history, [], totals)
    head = 1 if history and history[0].get("role") == "system" else 0
    cut = head + latest.left_out
    note = {"role": "system", "content": latest.context_note}
    sent = [*history[:head], note, *(_as_sent(m) for m in history[cut:])]
    return Transcript(conversation_id, sent, history[head:cut], totals)


def print_transcript(transcript: Transcript) -> None:
    """The transcript for people: what was left out (dim), then what was sent, then the cost."""
    from rich.console import Console

    from helpline.pricing import format_cost
    from helpline.views import print_messages

    console = Console(highlight=False)
    usage = transcript.usage
    console.print(
        f"[bold]Conversation {transcript.conversation_id}[/] · "
        f"{len(transcript.messages) + len(transcript.left_out)} messages"
    )
    if usage.replies:
        console.print(
            f"[dim]{usage.replies} model replies · {usage.prompt_tokens:,} tokens in "
            f"({usage.cached_tokens:,} cached) · {usage.completion_tokens:,} out · "
            f"{format_cost(usage.cost_usd)}[/]"
        )
    console.print()
    if transcript.left_out:
        console.print(
            f"[dim]Left out of the last request, to fit the model's context window "
            f"({len(transcript.left_out)} messages; the note after them stood in for them):[/]\n"
        )
        print_messages(console, transcript.left_out)
        console.print("[dim]What the last request sent:[/]\n")
    print_messages(console, transcript.messages)
    console.print("[dim]`helpline transcript --json` prints the exact messages.[/]")


def _as_sent(message: dict[str, Any]) -> dict[str, Any]:
    """A cut history is sent whole: without the response id a request could chain from."""
    from helpline.context_budget import RESPONSE_ID

    return {k: v for k, v in message.items() if k != RESPONSE_ID}
