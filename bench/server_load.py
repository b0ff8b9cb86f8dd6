"""Load on the HTTP server: N concurrent conversations streaming answers from a paced fake model.

    .venv/bin/python -m bench.server_load [--sizes 50,200,500] [--database-url URL] [--json]

Three processes, as in production: the fake OpenAI-compatible model server
(``tests/fake_openai.py``, one chunk per word every ``--chunk-delay`` seconds), the Helpline
server (``OpenAICompatModel`` → ``Assistant`` → ``create_app`` under uvicorn) and this load
client. Customers start spread over one answer's duration, so N streams are open at once, and
each sends ``--turns`` messages in a row.

Measured per size:
- added TTFT: time to the first ``text`` event at the client minus the fake's own first-token
  delay (so it includes the server's database work before the model call, the relay and any
  lag in the fake and the client: it is an upper bound on what the server adds);
- tokens/s delivered to clients, and the server process's CPU (share of one core);
- errors (non-200, ``error`` events, broken streams, wrong text) and lost messages (what is
  stored, compared with what was sent and streamed).
Rate limits are lifted in the benchmark server: every customer here shares one address.

In the same run, the anchor (``bench/cookbook_anchor.py``: the seed's loop with the
``openai`` SDK and the history in memory, behind FastAPI and SSE, as the cookbook serves it)
takes the same load from the same fake model; Helpline's server CPU per turn and tail
latency are reported as ratios to it (``--no-anchor`` skips it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import uvloop

from helpline.server.app import tune_gc_for_serving

_SENTENCE = (
    "thanks for waiting I checked your order and the courier is two streets away so it "
    "should arrive in a few minutes if anything is missing tell me and I will file a refund"
)
WORDS = _SENTENCE.split()
PROMPT = "You are the benchmark support desk."


def answer_for(text: str, tokens: int) -> str:
    """The fake model's deterministic answer to a customer message tagged ``[cNtM]``."""
    tag = text.split("]")[0].lstrip("[")
    return " ".join([f"Answer-{tag}:", *(WORDS[i % len(WORDS)] for i in range(tokens - 1))])


# --- the two server processes -------------------------------------------------------------


def run_fake(chunk_delay: float, tokens: int) -> None:
    """Role ``fake``: the paced fake model server; prints its URL, runs until stdin closes."""
    from tests.fake_openai import FakeOpenAI, text_reply

    def reply(body: dict[str, Any]) -> Any:
        return text_reply(answer_for(body["messages"][-1]["content"], tokens), delay=chunk_delay)

    with FakeOpenAI() as fake:
        fake.script(*([reply] * 200_000))
        tune_gc_for_serving()
        print(fake.base_url, flush=True)
        sys.stdin.read()


def run_server(model_url: str, database_url: str, port: int) -> None:
    """Role ``server``: Helpline's app on ``port`` (0: a free one), shared with the other
    workers through SO_REUSEPORT; prints the port, runs until killed."""
    import uvicorn

    from helpline.assistant import Assistant
    from helpline.config import Settings
    from helpline.models.openai_compat import OpenAICompatModel
    from helpline.server import Rate, RateLimits, create_app
    from helpline.store import Store
    from helpline.support import create_customer_ticket

    model = OpenAICompatModel(model_url, "fake-model", "bench", max_retries=0)
    assistant = Assistant(model, Store.open(database_url), [create_customer_ticket], PROMPT)
    unlimited = Rate(burst=1e9, per_second=1e9)
    app = create_app(assistant, Settings(), limits=RateLimits(unlimited, unlimited))
    tune_gc_for_serving()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, backlog=4096)
    uvicorn.Server(config).run(sockets=[sock])


def run_anchor(model_url: str) -> None:
    """Role ``anchor``: the cookbook's loop behind FastAPI on a free port; prints the port."""
    import uvicorn

    from bench.cookbook_anchor import create_anchor_app

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    app = create_anchor_app(model_url, PROMPT)
    config = uvicorn.Config(app, log_level="warning", access_log=False, backlog=4096)
    uvicorn.Server(config).run(sockets=[sock])


def _spawn(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.server_load", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line:
        raise SystemExit(f"The {args[1]} process did not start; see its output above.")
    return process, line


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the load client ----------------------------------------------------------------------


@dataclass
class Turn:
    ttft: float | None = None
    tokens: int = 0
    error: str | None = None


@dataclass
class Result:
    size: int
    turns: int
    ok_turns: int
    errors: int
    lost_messages: int
    ttft_p50_ms: float
    ttft_p99_ms: float
    added_ttft_p50_ms: float
    added_ttft_p99_ms: float
    tokens_per_s: float
    server_cpu_percent: float
    server_cpu_ms_per_turn: float
    fake_cpu_percent: float
    client_cpu_percent: float
    seconds: float
    error_samples: list[str] = field(default_factory=list)


async def _customer(
    session: aiohttp.ClientSession,
    url: str,
    index: int,
    start_at: float,
    turns: int,
    tokens: int,
    results: list[Turn],
) -> tuple[str, list[str]]:
    """One customer: a conversation and ``turns`` messages; returns its id and the texts the
    server accepted (answered 200), all of which must end up stored."""
    async with session.post(url + "/api/conversations") as created_response:
        created = await created_response.json()
    conversation, token = created["id"], created["token"]
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    sent = []
    for number in range(turns):
        text = f"[c{index}t{number}] Where is my order? It is late."
        turn = Turn()
        results.append(turn)
        began = time.monotonic()
        deltas: list[str] = []
        try:
            async with session.post(
                f"{url}/api/conversations/{conversation}/messages",
                headers={"Authorization": f"Bearer {token}"},
                json={"text": text},
            ) as response:
                if response.status != 200:
                    turn.error = f"HTTP {response.status}: {(await response.read())[:200]!r}"
                    continue
                sent.append(text)
                body = bytearray()
                # Only the first token is timed as it arrives; the rest is parsed at the end,
                # so that the client's own cost per token stays small beside the server's.
                async for received in response.content.iter_any():
                    if turn.ttft is None and b"event: text\n" in received:
                        turn.ttft = time.monotonic() - began
                    body += received
                done = False
                for event, data in _sse_events(bytes(body)):
                    if event == "text":
                        deltas.append(data["delta"])
                    elif event == "error":
                        turn.error = f"error event: {data['message']}"
                    elif event == "done":
                        done = True
                turn.tokens = len(deltas)
                if turn.error is None and not done:
                    turn.error = "the stream ended without a done event"
                elif turn.error is None and "".join(deltas) != answer_for(text, tokens):
                    turn.error = "the streamed text differs from the model's answer"
        except (aiohttp.ClientError, TimeoutError) as exc:
            turn.error = f"{type(exc).__name__}: {exc}"
    return conversation, sent


def _sse_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The ``(event, data)`` pairs of a whole SSE body (one ``data:`` line per event)."""
    events = []
    for block in body.split(b"\n\n"):
        name, _, data = block.partition(b"\ndata: ")
        if data:
            events.append((name.removeprefix(b"event: ").decode(), orjson.loads(data)))
    return events


def _lost(
    database_url: str | None, url: str, conversations: list[tuple[str, list[str]]], tokens: int
) -> int:
    """Messages missing or wrong in the database (the anchor: in its memory, read over HTTP),
    against what each customer sent."""
    from helpline.store import Store

    store = Store.open(database_url) if database_url else None

    def stored_in(conversation: str) -> list[dict[str, Any]]:
        if store is not None:
            return store.conversations.messages(conversation)
        messages: list[dict[str, Any]] = httpx.get(
            f"{url}/api/conversations/{conversation}"
        ).json()["messages"]
        return messages

    lost = 0
    try:
        for conversation, sent in conversations:
            stored = stored_in(conversation)
            expected = [{"role": "system", "content": PROMPT}]
            for text in sent:
                expected += [
                    {"role": "user", "content": text},
                    {"role": "assistant", "content": answer_for(text, tokens)},
                ]
            lost += sum(1 for want in expected if want not in stored)
            lost += max(0, len(stored) - len(expected))  # duplicates are wrong too
    finally:
        if store is not None:
            store.close()
    return lost


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(values)
    )


async def run_size(
    url: str,
    server_pids: list[int],
    fake_pid: int,
    database_url: str | None,
    size: int,
    args: argparse.Namespace,
) -> Result:
    answer_seconds = args.tokens * args.chunk_delay
    # Idle connections expire before uvicorn's 5 s keep-alive closes them, so no request is
    # sent on a connection the server is closing. aiohttp, not httpx, so that the client's
    # own cost per streamed chunk (~40 µs against ~250 µs) does not swamp the measurement.
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=2.0)
    timeout = aiohttp.ClientTimeout(total=120.0, sock_connect=30.0)
    turns: list[Turn] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        start = time.monotonic() + 1.0
        cpu_before, wall_before = sum(map(_cpu_seconds, server_pids)), time.monotonic()
        fake_before, client_before = _cpu_seconds(fake_pid), time.process_time()
        conversations = await asyncio.gather(
            *(
                _customer(
                    client,
                    url,
                    index,
                    start + random.uniform(0, answer_seconds),
                    args.turns,
                    args.tokens,
                    turns,
                )
                for index in range(size)
            )
        )
        wall = time.monotonic() - wall_before
        cpu = sum(map(_cpu_seconds, server_pids)) - cpu_before
        fake_cpu = _cpu_seconds(fake_pid) - fake_before
        client_cpu = time.process_time() - client_before
    await asyncio.sleep(0.5)  # let the server store the last answers
    ttfts = [t.ttft * 1000 for t in turns if t.ttft is not None]
    added = [max(0.0, v - args.chunk_delay * 1000) for v in ttfts]
    errors = [t.error for t in turns if t.error]
    return Result(
        size=size,
        turns=len(turns),
        ok_turns=len(turns) - len(errors),
        errors=len(errors),
        lost_messages=_lost(database_url, url, conversations, args.tokens),
        ttft_p50_ms=round(_percentile(ttfts, 50), 1),
        ttft_p99_ms=round(_percentile(ttfts, 99), 1),
        added_ttft_p50_ms=round(_percentile(added, 50), 1),
        added_ttft_p99_ms=round(_percentile(added, 99), 1),
        tokens_per_s=round(sum(t.tokens for t in turns) / wall),
        server_cpu_percent=round(100 * cpu / wall, 1),
        server_cpu_ms_per_turn=round(1000 * cpu / max(1, len(turns) - len(errors)), 2),
        fake_cpu_percent=round(100 * fake_cpu / wall, 1),
        client_cpu_percent=round(100 * client_cpu / wall, 1),
        seconds=round(wall, 1),
        error_samples=sorted(set(errors))[:3],
    )


def _table(results: list[Result], args: argparse.Namespace, database: str) -> str:
    head = (
        f"{args.turns} turns per conversation, {args.tokens} tokens per answer, one every "
        f"{args.chunk_delay * 1000:g} ms (fake first token after {args.chunk_delay * 1000:g} ms); "
        f"database: {database}; {args.workers} server worker(s); {os.cpu_count()} CPU cores"
    )
    columns = (
        f"{'streams':>7} {'turns':>6} {'errors':>6} {'lost':>5} {'TTFT p50':>9} {'p99':>8} "
        f"{'added p50':>10} {'p99':>8} {'tokens/s':>9} {'CPU server':>11} {'fake':>6} "
        f"{'client':>7} {'seconds':>8}"
    )
    rows = [
        f"{r.size:>7} {r.turns:>6} {r.errors:>6} {r.lost_messages:>5} {r.ttft_p50_ms:>7.1f}ms "
        f"{r.ttft_p99_ms:>6.1f}ms {r.added_ttft_p50_ms:>8.1f}ms {r.added_ttft_p99_ms:>6.1f}ms "
        f"{r.tokens_per_s:>9} {r.server_cpu_percent:>10.1f}% {r.fake_cpu_percent:>5.0f}% "
        f"{r.client_cpu_percent:>6.0f}% {r.seconds:>8.1f}"
        for r in results
    ]
    samples = [f"  e.g. {s}" for r in results for s in r.error_samples]
    return "\n".join([head, columns, *rows, *samples])


def _against_anchor(results: list[Result], anchors: list[Result]) -> str:
    """Helpline beside the cookbook's loop, size by size: CPU per turn and tail latency."""
    columns = (
        f"{'streams':>7} {'errors':>6} {'lost':>5} {'added p99':>10} {'CPU/turn':>9}   "
        f"{'anchor errors':>13} {'added p99':>10} {'CPU/turn':>9}   {'CPU ratio':>9} "
        f"{'p99 ratio':>9}"
    )
    rows = [
        f"{r.size:>7} {r.errors:>6} {r.lost_messages:>5} {r.added_ttft_p99_ms:>8.1f}ms "
        f"{r.server_cpu_ms_per_turn:>7.2f}ms   {a.errors:>13} {a.added_ttft_p99_ms:>8.1f}ms "
        f"{a.server_cpu_ms_per_turn:>7.2f}ms   {_ratio(r.server_cpu_ms_per_turn, a.server_cpu_ms_per_turn):>9} "
        f"{_ratio(r.added_ttft_p99_ms, a.added_ttft_p99_ms):>9}"
        for r, a in zip(results, anchors, strict=True)
    ]
    samples = [f"  anchor e.g. {s}" for a in anchors for s in a.error_samples]
    title = "Helpline against the anchor (the cookbook's loop: openai SDK, FastAPI, SSE):"
    return "\n".join([title, columns, *rows, *samples])


def _ratio(value: float, anchor: float) -> str:
    return f"{value / anchor:.2f}x" if anchor > 0 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", default="50,200,500", help="concurrent conversations, e.g. 50,200,500"
    )
    parser.add_argument("--turns", type=int, default=2, help="messages per conversation")
    parser.add_argument("--tokens", type=int, default=60, help="tokens (chunks) per answer")
    parser.add_argument("--chunk-delay", type=float, default=0.05, help="seconds between chunks")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: a new SQLite file)")
    parser.add_argument("--workers", type=int, default=1, help="server processes on one port")
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--no-anchor", action="store_true", help="skip the cookbook loop's run beside Helpline"
    )
    parser.add_argument(
        "--role",
        choices=["client", "fake", "server", "anchor"],
        default="client",
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--model-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "fake":
        run_fake(args.chunk_delay, args.tokens)
        return
    if args.role == "server":
        run_server(args.model_url, args.database_url, args.port)
        return
    if args.role == "anchor":
        run_anchor(args.model_url)
        return

    with tempfile.TemporaryDirectory() as folder:
        database_url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        fake, model_url = _spawn(
            "--role", "fake", "--chunk-delay", str(args.chunk_delay), "--tokens", str(args.tokens)
        )
        server_args = ["--role", "server", "--model-url", model_url, "--database-url", database_url]
        first, port = _spawn(*server_args)
        servers = [first] + [
            _spawn(*server_args, "--port", port)[0] for _ in range(args.workers - 1)
        ]
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            pids = [server.pid for server in servers]
            # uvloop and the server's collector settings: the client's own cost per streamed
            # token and its pauses are measured time too, on the same two cores.
            tune_gc_for_serving()
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results = [
                    runner.run(run_size(url, pids, fake.pid, database_url, int(size), args))
                    for size in args.sizes.split(",")
                ]
                for server in servers:  # the anchor has the cores to itself, as Helpline had
                    server.terminate()
                    server.wait(timeout=10)
                anchors = [] if args.no_anchor else _run_anchor(runner, model_url, fake.pid, args)
        finally:
            for process in [*servers, fake]:
                process.terminate()
                process.wait(timeout=10)
    if args.json:
        data: dict[str, Any] = {"helpline": [asdict(r) for r in results]}
        if anchors:
            data["anchor"] = [asdict(a) for a in anchors]
        print(json.dumps(data if anchors else data["helpline"], indent=2))
    else:
        database = database_url.split(":", 1)[0]
        print(_table(results, args, database))
        if anchors:
            print()
            print(_against_anchor(results, anchors))


def _run_anchor(
    runner: asyncio.Runner, model_url: str, fake_pid: int, args: argparse.Namespace
) -> list[Result]:
    """The same sizes against the cookbook's loop, from the same fake model."""
    anchor, port = _spawn("--role", "anchor", "--model-url", model_url)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        return [
            runner.run(run_size(url, [anchor.pid], fake_pid, None, int(size), args))
            for size in args.sizes.split(",")
        ]
    finally:
        anchor.terminate()
        anchor.wait(timeout=10)


if __name__ == "__main__":
    main()
