"""The ``helpline`` command. Thin: it parses flags, builds the engine, and prints.

Heavy modules are imported inside commands so ``helpline --help`` starts fast.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from helpline import cli_desk, cli_eval, cli_stats, cli_usage
from helpline.cli_options import DatabaseOption, JsonOption

if TYPE_CHECKING:
    from helpline.config import Settings
    from helpline.store import Store

app = typer.Typer(
    help="Helpline: a customer-support chat assistant (Grok, any OpenAI-compatible model, or offline).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tickets_app = typer.Typer(
    help="See and update the tickets the assistant filed.", no_args_is_help=True
)
app.add_typer(tickets_app, name="tickets")
demo_app = typer.Typer(help="Demo data for trying Helpline out.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
conversations_app = typer.Typer(help="Customers' conversations.", no_args_is_help=True)
app.add_typer(conversations_app, name="conversations")
app.add_typer(cli_desk.approvals_app, name="approvals")
app.add_typer(cli_desk.agents_app, name="agents")
app.command("audit")(cli_desk.audit)

ModelOption = Annotated[str | None, typer.Option("--model", help="Model name (HELPLINE_MODEL).")]
BaseUrlOption = Annotated[
    str | None,
    typer.Option("--base-url", help="OpenAI-compatible endpoint (HELPLINE_BASE_URL)."),
]
GgufOption = Annotated[
    str | None, typer.Option("--gguf", help="Run a local GGUF model file (HELPLINE_GGUF).")
]

EXIT_WORDS = frozenset({"exit", "quit", "bye", ":q"})


def _settings(**flags: str | None) -> Settings:
    from helpline.config import ConfigError, Settings

    try:
        return Settings.from_env().override(**flags)
    except ConfigError as exc:
        _fail(str(exc))


def _open_store(settings: Settings) -> Store:
    from helpline.store import Store

    try:
        return Store.open(settings.database_url)
    except Exception as exc:  # any driver error: say which database and what to check
        _fail(
            f"Could not open the database ({type(exc).__name__}: {exc}). "
            "Check HELPLINE_DATABASE_URL or --database-url."
        )


def _fail(message: str, code: int = 1) -> NoReturn:
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]Error:[/] {message}", markup=True
    )
    raise typer.Exit(code)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def _report(json_output: bool, data: Any, sentence: str) -> None:
    """What a command did: ``data`` as JSON for scripts, or one sentence for people."""
    if json_output:
        _print_json(data)
    else:
        sys.stdout.write(sentence + "\n")


@app.command()
def chat(
    conversation: Annotated[
        str | None, typer.Option("--conversation", "-c", help="Resume this conversation.")
    ] = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    database_url: DatabaseOption = None,
    gguf: GgufOption = None,
    json_output: JsonOption = False,
    hide_tools: Annotated[
        bool, typer.Option("--hide-tools", help="Don't show tool activity.")
    ] = False,
) -> None:
    """Chat in the terminal, answers streamed. Type `exit` to leave; reads piped input too."""
    from helpline.startup import frozen_start_up

    with frozen_start_up():
        from helpline.app import build_assistant
        from helpline.support import ProfileError

        settings = _settings(model=model, base_url=base_url, database_url=database_url, gguf=gguf)
        store = _open_store(settings)
        try:
            assistant = build_assistant(settings, local_files_allowed=True, store=store)
        except ProfileError as exc:
            _fail(f"The company profile could not be loaded: {exc} (HELPLINE_PROFILE)")
        if conversation is not None and store.conversations.get(conversation) is None:
            _fail(
                f"There is no conversation {conversation!r}. "
                "Run `helpline chat` without --conversation to start a new one."
            )
        conversation_id = conversation or assistant.new_conversation(channel="terminal")
    import asyncio

    asyncio.run(_chat_loop(assistant, conversation_id, json_output, not hide_tools))


async def _chat_loop(
    assistant: Any, conversation_id: str, json_output: bool, show_tools: bool
) -> None:
    from rich.console import Console

    from helpline.chat_rating import RatingPrompt, line_reader
    from helpline.events import TurnDone
    from helpline.messages import UserMessage
    from helpline.terminal import JsonLinesPrinter, LiveTurnPrinter, TurnPrinter
    from helpline.turns import TurnRefused, start_turn

    interactive = sys.stdin.isatty()
    show_cost = not json_output and sys.stdout.isatty()  # a dim cost line per turn
    status = Console(stderr=True, highlight=False, soft_wrap=True)
    printer: JsonLinesPrinter | TurnPrinter
    activities = {tool.name: tool.activity for tool in assistant.tools}
    if json_output:
        printer = JsonLinesPrinter()
    elif sys.stdout.isatty():
        printer = LiveTurnPrinter(show_tools=show_tools, activities=activities)
    else:
        printer = TurnPrinter(show_tools=show_tools, activities=activities)
    status.print(
        f"[dim]Helpline · {assistant.model.name} · conversation {conversation_id}"
        + (" · type exit to leave" if interactive else "")
        + "[/]"
    )
    rating = RatingPrompt(
        assistant.store,
        conversation_id,
        interactive=interactive,
        json_output=json_output,
        read_line=line_reader(interactive),
    )
    try:
        while True:
            line = _read_line(interactive)
            if line is None or line.strip().lower() in EXIT_WORDS:
                rating.at_end()
                break
            if not line.strip():
                continue
            if not interactive and not json_output:
                sys.stdout.write(f"You: {line}\n")
            printer.prefix()
            try:
                turn = await start_turn(assistant, conversation_id, UserMessage(content=line))
            except TurnRefused as refused:  # not stored: the customer types it again
                printer.show(refused.event)
                continue
            async for event in turn:
                printer.show(event)
                if show_cost and isinstance(event, TurnDone):
                    status.print(f"[dim]{cli_usage.turn_cost_line(event)}[/]")
            rating.after_turn(line)
    finally:
        await assistant.model.aclose()
        status.print(
            f"[dim]Conversation {conversation_id} saved. "
            f"Resume with: helpline chat --conversation {conversation_id}[/]"
        )


def _read_line(interactive: bool) -> str | None:
    """The customer's next message, or ``None`` at the end of input."""
    try:
        if interactive:
            from rich.console import Console

            return Console().input("[bold green]You:[/] ")
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None
    except (EOFError, KeyboardInterrupt):
        return None


@app.command()
def transcript(
    conversation: Annotated[
        str | None, typer.Argument(help="Conversation id (default: the most recent).")
    ] = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """The conversation's messages, exactly as last sent to the model (OpenAI wire form), what
    was left out to fit its context window, and what its replies cost (--json:
    conversation_id, messages, left_out, usage with cached_tokens and cost_usd, and
    responses_request: the Responses API's input items and previous_response_id, when used)."""
    store = _open_store(_settings(database_url=database_url))
    conversation_id = conversation or store.conversations.latest_id()
    if conversation_id is None:
        _fail("There are no conversations yet. Start one with `helpline chat`.")
    info = store.conversations.get(conversation_id)
    if info is None:
        _fail(
            f"There is no conversation {conversation_id!r}. List tickets with `helpline tickets list`."
        )
    from helpline.transcripts import print_transcript, read_transcript

    read = read_transcript(store, conversation_id)
    if json_output:
        _print_json(read.as_json())
        return
    print_transcript(read)


@tickets_app.command("list")
def tickets_list(
    status: Annotated[
        str | None, typer.Option("--status", help="Only tickets with this status.")
    ] = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """List tickets, newest first."""
    from dataclasses import asdict

    store = _open_store(_settings(database_url=database_url))
    tickets = store.tickets.find(status=status)
    if json_output:
        _print_json([asdict(t) for t in tickets])
        return
    from helpline.views import print_tickets

    print_tickets(tickets)


@tickets_app.command("show")
def tickets_show(
    ticket_id: Annotated[int, typer.Argument(help="Ticket number.")],
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one ticket and the conversation behind it."""
    from dataclasses import asdict

    store = _open_store(_settings(database_url=database_url))
    ticket = store.tickets.get(ticket_id)
    if ticket is None:
        _fail(f"There is no ticket #{ticket_id}. See the list with `helpline tickets list`.")
    messages = (
        store.conversations.messages(ticket.conversation_id) if ticket.conversation_id else []
    )
    if json_output:
        _print_json({**asdict(ticket), "messages": messages})
        return
    from helpline.views import print_ticket

    print_ticket(ticket, messages)


@tickets_app.command("update")
def tickets_update(
    ticket_id: Annotated[int, typer.Argument(help="Ticket number.")],
    status: Annotated[str, typer.Option("--status", help="New status.")],
    agent: Annotated[
        str | None, typer.Option("--agent", help="Your name as an agent, for the audit log.")
    ] = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change a ticket's status (open, in_progress, waiting_on_customer, resolved, closed)."""
    from dataclasses import asdict

    desk = cli_desk.open_desk(database_url)
    who = cli_desk.acting_agent(desk.store, agent)
    ticket = cli_desk.run_action(desk.set_ticket_status, who, ticket_id, status)
    _report(json_output, asdict(ticket), f"Ticket #{ticket.id} is now {ticket.status}.")


def _ticket_conversation(store: Store, ticket_id: int) -> str:
    ticket = store.tickets.get(ticket_id)
    if ticket is None:
        _fail(f"There is no ticket #{ticket_id}. See the list with `helpline tickets list`.")
    if ticket.conversation_id is None:
        _fail(f"Ticket #{ticket_id} has no conversation behind it: there is no chat to reply in.")
    return ticket.conversation_id


@tickets_app.command("reply")
def tickets_reply(
    ticket_id: Annotated[int, typer.Argument(help="Ticket number.")],
    text: Annotated[str, typer.Argument(help="What to tell the customer.")],
    agent: Annotated[
        str | None, typer.Option("--agent", help="Your name as an agent, for the audit log.")
    ] = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Reply to the customer in the ticket's chat, as the support team (the assistant then
    stays quiet in it until `helpline tickets hand-back`)."""
    desk = cli_desk.open_desk(database_url)
    conversation_id = _ticket_conversation(desk.store, ticket_id)
    who = cli_desk.acting_agent(desk.store, agent)
    message_id = cli_desk.run_action(desk.reply, who, conversation_id, text)
    data = {"conversation_id": conversation_id, "message_id": message_id}
    _report(json_output, data, f"Replied in the chat of ticket #{ticket_id}.")


@tickets_app.command("hand-back")
def tickets_hand_back(
    ticket_id: Annotated[int, typer.Argument(help="Ticket number.")],
    agent: Annotated[
        str | None, typer.Option("--agent", help="Your name as an agent, for the audit log.")
    ] = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Hand the ticket's chat back to the assistant."""
    from helpline.store import ACTIVE

    desk = cli_desk.open_desk(database_url)
    conversation_id = _ticket_conversation(desk.store, ticket_id)
    cli_desk.run_action(desk.hand_back, cli_desk.acting_agent(desk.store, agent), conversation_id)
    data = {"conversation_id": conversation_id, "status": ACTIVE}
    _report(json_output, data, f"The chat of ticket #{ticket_id} is back with the assistant.")


@conversations_app.command("delete")
def conversations_delete(
    conversation_id: Annotated[str, typer.Argument(help="The conversation's id.")],
    agent: Annotated[
        str | None, typer.Option("--agent", help="Your name as an agent, for the audit log.")
    ] = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete a conversation at the customer's request: its messages, images and receipts.
    Tickets filed from it stay (refunds are records), without the customer's name and words."""
    settings = _settings(database_url=database_url)
    store = _open_store(settings)
    messages = store.conversations.messages(conversation_id)
    desk = cli_desk.desk_over(store)
    cli_desk.run_action(
        desk.delete_conversation, cli_desk.acting_agent(store, agent), conversation_id
    )
    _forget_stored_responses(settings, messages)
    _report(json_output, {"deleted": conversation_id}, f"Deleted conversation {conversation_id}.")


def _forget_stored_responses(settings: Settings, messages: list[dict[str, Any]]) -> None:
    """Delete a deleted conversation's responses stored at the provider (Responses API)."""
    from helpline.models.openai_responses import (
        forget_conversation_responses,
        stored_response_ids,
    )

    if not stored_response_ids(messages):
        return
    import asyncio

    model = settings.build_model()

    async def forget() -> None:
        try:
            await forget_conversation_responses(model, messages)
        finally:
            await model.aclose()

    asyncio.run(forget())


@app.command()
def doctor(
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check the configuration: which backend and database, and whether they answer."""
    import asyncio

    from helpline.doctor import print_report, run_checks

    checks = asyncio.run(
        run_checks(_settings(model=model, base_url=base_url, database_url=database_url))
    )
    if json_output:
        _print_json([check._asdict() for check in checks])
    else:
        print_report(checks)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


@app.command()
def receipt(
    source: Annotated[str, typer.Argument(help="A receipt photo: a file path or a public link.")],
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    json_output: JsonOption = False,
) -> None:
    """Read one receipt photo into date, items, currency and total."""
    import asyncio

    from rich.console import Console

    from helpline.images import ImageError, load_image
    from helpline.receipts import ReceiptReadError, read_receipt

    settings = _settings(model=model, base_url=base_url)
    status = Console(stderr=True, highlight=False, soft_wrap=True)

    async def read() -> Any:
        image = await load_image(source, local_files_allowed=True)
        vision = settings.build_vision_model()
        try:
            with status.status("Reading the receipt…") as spinner:
                return await read_receipt(
                    image.data, image.mime, vision, on_progress=lambda text: spinner.update(text)
                )
        finally:
            if vision is not None:
                await vision.aclose()

    try:
        result = asyncio.run(read())
    except (ImageError, ReceiptReadError) as exc:
        _fail(str(exc))
    if json_output:
        _print_json(result.model_dump(mode="json"))
        return
    from helpline.views import print_receipt

    print_receipt(result)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes (share the database).")
    ] = 1,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    database_url: DatabaseOption = None,
    gguf: GgufOption = None,
    rate_limits: Annotated[
        str | None,
        typer.Option(
            "--rate-limits",
            help="Burst:per-second limits, e.g. client=120:4,conversation=6:0.25,auth=10:0.1 "
            "(HELPLINE_RATE_LIMITS).",
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Proxies (addresses or networks, comma-separated, or *) whose X-Forwarded-For "
            "names the client; default loopback only (HELPLINE_FORWARDED_ALLOW_IPS).",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option("--redis-url", help="Share rate limits across nodes (HELPLINE_REDIS_URL)."),
    ] = None,
) -> None:
    """Serve the web chat page at / and the HTTP API under /api."""
    from helpline.server.app import serve as run_server

    settings = _settings(
        model=model,
        base_url=base_url,
        database_url=database_url,
        gguf=gguf,
        rate_limits=rate_limits,
        forwarded_allow_ips=forwarded_allow_ips,
        redis_url=redis_url,
    )
    _open_store(settings).close()  # fail here, clearly, if the database is unreachable
    from helpline.config import ConfigError

    try:
        run_server(settings, host=host, port=port, workers=workers)
    except ConfigError as exc:  # a setting only the server reads (allowed origins, identity)
        _fail(str(exc))


@demo_app.command("seed")
def demo_seed(
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Load demo orders (customers Omar, Lena and Sam) to try order lookups and refunds."""
    from helpline.support.demo import DEMO_EMAILS, seed_demo_orders

    added = seed_demo_orders(_open_store(_settings(database_url=database_url)))
    if json_output:
        _print_json({"added": added, "emails": list(DEMO_EMAILS)})
        return
    if added:
        sys.stdout.write(f"Added {len(added)} demo orders: {', '.join(added)}.\n")
    else:
        sys.stdout.write("The demo orders are already there.\n")
    sys.stdout.write(f"An order opens with the email address on it: {', '.join(DEMO_EMAILS)}.\n")


app.command("stats")(cli_stats.stats)
app.command("eval")(cli_eval.evaluate)
app.command("usage")(cli_usage.usage)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
