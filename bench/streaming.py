"""CPU cost of a streamed turn: Helpline's full path against the seed's openai-SDK loop,
and the Responses API backend against the chat-completions one.

Each reads the same 500-token stream from a fake server (chat completions, or the Responses
API's semantic events), which runs in a separate process so that only the client's CPU is
counted. Helpline's path includes streaming, persisting to SQLite and rendering to a
terminal printer. The bytes a Responses request sends at turn 50 are measured continuing
the stored response, and sending the whole conversation (as with HELPLINE_XAI_STORE=false).
``helpline chat`` itself is measured as whole processes (``bench/chat_process.py``): CPU
until ready for the first message, the first turn, and the steady state.

    .venv/bin/python -m bench.streaming [--turns 20] [--tokens 500] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

_SERVER = """
import sys, time
from tests.fake_openai import FakeOpenAI, text_reply, tool_call_reply
from tests.fake_responses import FakeResponses
tokens = int(sys.argv[1])
answer = [f" word{i}" for i in range(tokens)]

def reply(body):
    last = body["messages"][-1]
    if last["role"] == "user" and last["content"] == "ticket please":
        args = '{"name": "Omar", "issue": "Cannot log in to the app"}'
        return tool_call_reply([("call_" + str(time.monotonic_ns()), "create_customer_ticket", args)])
    if last["role"] == "tool":
        return text_reply("Your ticket is filed.")
    if last["content"].startswith("turn "):
        return text_reply(answer[:40])
    return text_reply(answer)

server = FakeResponses() if sys.argv[2] == "responses" else FakeOpenAI()
server.script(*[reply] * 100000)
server.start()
print(server.base_url, flush=True)
sys.stdin.read()
"""


def _start_server(tokens: int, style: str = "chat") -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(tokens), style],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _seed_loop_cpu(base_url: str, turns: int) -> list[float]:
    """The seed's loop: the openai SDK streaming chat completions, printing each delta."""
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="bench")
    out = open(os.devnull, "w")  # noqa: SIM115
    costs = []
    for _ in range(turns):
        messages: list[Any] = [{"role": "user", "content": "tell me a story"}]
        started = time.process_time()
        stream = client.chat.completions.create(model="fake-model", messages=messages, stream=True)
        content = ""
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                content += chunk.choices[0].delta.content
                out.write(chunk.choices[0].delta.content)
                out.flush()
        messages.append({"role": "assistant", "content": content})
        costs.append(time.process_time() - started)
    return costs


def _model(base_url: str, style: str = "chat", store: bool = True) -> Any:
    if style == "responses":
        from helpline.models.openai_responses import ResponsesModel

        return ResponsesModel(base_url, "fake-model", "bench", store=store)
    from helpline.models.openai_compat import OpenAICompatModel

    return OpenAICompatModel(base_url, "fake-model", "bench")


async def _helpline_cpu(
    base_url: str, turns: int, text: str, database: Path, style: str = "chat"
) -> list[float]:
    from helpline.assistant import Assistant
    from helpline.messages import UserMessage
    from helpline.store import Store
    from helpline.support.tickets import create_customer_ticket
    from helpline.terminal import TurnPrinter

    store = Store.open(f"sqlite:///{database}")
    model = _model(base_url, style)
    assistant = Assistant(model, store, [create_customer_ticket])
    printer = TurnPrinter(open(os.devnull, "w"))  # noqa: SIM115
    costs = []
    for _ in range(turns):
        conversation_id = assistant.new_conversation()
        started = time.process_time()
        async for event in assistant.run_turn(conversation_id, UserMessage(content=text)):
            printer.show(event)
        costs.append(time.process_time() - started)
    await model.aclose()
    store.close()
    return costs


async def _turn_50_bytes(base_url: str, database: Path) -> tuple[int, int]:
    """Bytes of the request for turn 50 of a conversation on the Responses API: continuing
    the stored response (only the new message), and with the whole conversation."""
    import orjson

    from helpline.assistant import Assistant
    from helpline.messages import UserMessage
    from helpline.store import Store
    from helpline.support.tickets import create_customer_ticket

    store = Store.open(f"sqlite:///{database}")
    model = _model(base_url, "responses")
    assistant = Assistant(model, store, [create_customer_ticket])
    conversation_id = assistant.new_conversation()
    for number in range(1, 50):
        async for _ in assistant.run_turn(conversation_id, UserMessage(content=f"turn {number}")):
            pass
    history = [
        *store.conversations.messages(conversation_id),
        {"role": "user", "content": "turn 50"},
    ]
    tools = assistant.tools.schemas()
    chained = model.request_body(history, tools, None)
    whole = _model(base_url, "responses", store=False).request_body(history, tools, None)
    assert "previous_response_id" in chained and "previous_response_id" not in whole
    await model.aclose()
    store.close()
    return len(orjson.dumps(chained)), len(orjson.dumps(whole))


def _help_startup_seconds(runs: int = 5) -> float:
    executable = Path(sys.executable).with_name("helpline")
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([executable, "--help"], capture_output=True, check=True)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _chat_process_rows(base_url: str, turns: int) -> list[tuple[str, float, str, float | None]]:
    """``helpline chat`` as whole processes: CPU until ready for the first message, the first
    turn, the steady state, and a session against the seed loop's process."""
    from bench.chat_process import measure

    return measure(base_url, runs=5, turns=turns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    process, base_url = _start_server(args.tokens)
    responses_process, responses_url = _start_server(args.tokens, "responses")
    try:
        with tempfile.TemporaryDirectory() as folder:
            _seed_loop_cpu(base_url, 2)  # warm up imports and connections
            seed = statistics.median(_seed_loop_cpu(base_url, args.turns))
            database = Path(folder) / "bench.db"
            asyncio.run(_helpline_cpu(base_url, 2, "warm up", database))
            ours = statistics.median(
                asyncio.run(_helpline_cpu(base_url, args.turns, "tell me a story", database))
            )
            tool_round = statistics.median(
                asyncio.run(_helpline_cpu(base_url, args.turns, "ticket please", database))
            )
            asyncio.run(_helpline_cpu(responses_url, 2, "warm up", database, "responses"))
            responses = statistics.median(
                asyncio.run(
                    _helpline_cpu(
                        responses_url, args.turns, "tell me a story", database, "responses"
                    )
                )
            )
            responses_tool_round = statistics.median(
                asyncio.run(
                    _helpline_cpu(responses_url, args.turns, "ticket please", database, "responses")
                )
            )
            chained_bytes, whole_bytes = asyncio.run(
                _turn_50_bytes(responses_url, Path(folder) / "turn50.db")
            )
        chat_rows = _chat_process_rows(base_url, args.turns)
    finally:
        process.terminate()
        responses_process.terminate()
    startup = _help_startup_seconds()

    rows = [
        ("seed loop (openai SDK): CPU per turn", seed * 1000, "ms", None),
        ("seed loop: CPU per token", seed / args.tokens * 1e6, "µs", None),
        ("helpline full path: CPU per turn", ours * 1000, "ms", None),
        ("helpline: CPU per token", ours / args.tokens * 1e6, "µs", 100.0),
        ("helpline / seed CPU per turn", ours / seed, "×", 0.5),
        ("tool round (ticket turn): CPU", tool_round * 1000, "ms", 35.0),
        ("Responses API: CPU per token", responses / args.tokens * 1e6, "µs", 100.0),
        ("Responses / chat CPU per token", responses / ours, "×", 1.2),
        ("Responses API tool round: CPU", responses_tool_round * 1000, "ms", 35.0),
        ("Responses / chat CPU per tool round", responses_tool_round / tool_round, "×", 1.2),
        ("turn 50 request, chained: bytes", chained_bytes, "B", None),
        ("turn 50 request, whole input: bytes", whole_bytes, "B", None),
        ("turn 50 chained / whole input bytes", chained_bytes / whole_bytes, "×", None),
        ("helpline --help start-up", startup * 1000, "ms", 300.0),
        *chat_rows,
    ]
    if args.json:
        print(
            json.dumps(
                [{"metric": m, "value": round(v, 3), "unit": u, "target": t} for m, v, u, t in rows]
            )
        )
        return
    print(f"Streamed turn of {args.tokens} tokens, median of {args.turns} turns\n")
    print(f"{'metric':<48} {'value':>10}  {'unit':<4} {'target':>8}  ok")
    for metric, value, unit, target in rows:
        verdict = "" if target is None else ("yes" if value <= target else "NO")
        shown_target = "" if target is None else f"≤ {target:g}"
        print(f"{metric:<48} {value:>10.2f}  {unit:<4} {shown_target:>8}  {verdict}")


if __name__ == "__main__":
    main()
