"""Milliseconds per offline-assistant turn over scripted conversations (target: < 50 ms).

Each conversation is replayed against ``OfflineModel.stream`` with canned tool results, so
the time is the policy alone (reading the history, deciding, streaming), not tool work.

    .venv/bin/python -m bench.offline [--rounds N] [--gguf PATH]

With ``--gguf`` it also starts that model with llama.cpp and reports tokens per second and
the process's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time
from typing import Any

from tests.tool_stubs import TOOLS as STUBS

from helpline.models.base import TextDelta, ToolCallReady
from helpline.models.offline import OfflineModel

TOOLS = [
    STUBS[name]
    for name in (
        "create_customer_ticket",
        "analyze_receipt_image",
        "search_help_center",
        "lookup_order",
        "request_refund",
        "escalate_to_human",
    )
]
RESULTS: dict[str, Any] = {
    "create_customer_ticket": "Ticket #12 created for Omar (status: open). Issue: login",
    "analyze_receipt_image": {
        "date": "2024-05-01",
        "items": [{"name": "Soda", "quantity": 1, "price_in_cents": 199}],
        "currency": "USD",
        "total_in_cents": 199,
    },
    "search_help_center": {
        "results": [{"article": "Refunds", "section": "", "text": "Ask within 30 days."}]
    },
    "lookup_order": {
        "order_id": "DD-10234",
        "status": "delivered",
        "items": [{"name": "Margherita", "quantity": 1, "unit_price_cents": 1200}],
    },
    "request_refund": {"approved": True, "message": "Refund of 12.00 EUR approved."},
    "escalate_to_human": {"message": "A person will reply here."},
}
CONVERSATIONS: dict[str, list[str]] = {
    "seed: login ticket": ["Hi, I can't log in to my account", "Omar", "thanks!"],
    "receipt complaint": [
        "[Shared image: image://abc] I was charged for a soda I never ordered",
        "I'm Omar",
        "bye",
    ],
    "refund": [
        "Order DD-10234 arrived cold, I want a refund",
        "omar@example.com",
        "the margherita",
        "thanks",
    ],
    "questions": ["how do refunds work?", "how long does delivery take?", "what's the weather?"],
    "long chat (22 messages)": [
        "hello",
        "where is my order?",
        "DD-10234",
        "omar@example.com",
        "it was cold",
        "Omar Haddad",
        "how do refunds work?",
        "I want to talk to a human",
        "thanks",
        "actually one more thing, the app crashes",
        "bye",
    ],
}


async def _replay(model: OfflineModel, script: list[str]) -> list[float]:
    """Times (ms) of every ``stream`` call in one conversation, tool rounds included."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are support."}]
    times: list[float] = []
    for text in script:
        messages.append({"role": "user", "content": text})
        for _ in range(5):
            started = time.perf_counter()
            reply, calls = "", []
            async for event in model.stream(messages, TOOLS):
                if isinstance(event, TextDelta):
                    reply += event.text
                elif isinstance(event, ToolCallReady):
                    calls.append(event.call)
            times.append((time.perf_counter() - started) * 1000)
            wire: dict[str, Any] = {"role": "assistant", "content": reply or None}
            if calls:
                wire["tool_calls"] = [c.model_dump() for c in calls]
            messages.append(wire)
            if not calls:
                break
            for call in calls:
                result = RESULTS[call.function.name]
                content = result if isinstance(result, str) else json.dumps(result)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
    return times


async def _bench_offline(rounds: int) -> None:
    model = OfflineModel()
    await _replay(model, CONVERSATIONS["seed: login ticket"])  # warm caches and imports
    print(f"{'conversation':<26} {'turns':>6} {'mean ms':>9} {'p99 ms':>8} {'max ms':>8}")
    everything: list[float] = []
    for name, script in CONVERSATIONS.items():
        times = [t for _ in range(rounds) for t in await _replay(model, script)]
        everything += times
        print(
            f"{name:<26} {len(times) // rounds:>6} {statistics.fmean(times):>9.2f} "
            f"{_p99(times):>8.2f} {max(times):>8.2f}"
        )
    print(
        f"{'all':<26} {len(everything):>6} {statistics.fmean(everything):>9.2f} "
        f"{_p99(everything):>8.2f} {max(everything):>8.2f}"
    )


def _p99(times: list[float]) -> float:
    return (
        statistics.quantiles(times, n=100, method="inclusive")[98] if len(times) > 1 else times[0]
    )


def _bench_gguf(path: str) -> None:
    import httpx

    from helpline.models.local_gguf import start_local_server

    started = time.perf_counter()
    with start_local_server(path, ctx_size=1024) as server:
        load_s = time.perf_counter() - started
        body = {
            "model": server.model_name,
            "messages": [{"role": "user", "content": "Describe a pizza in three sentences."}],
            "max_tokens": 64,
            "temperature": 0,
        }
        rates, prompt_rates = [], []
        for _ in range(3):
            reply = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=300).json()
            rates.append(reply["timings"]["predicted_per_second"])
            prompt_rates.append(reply["timings"]["prompt_per_second"])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n{'local GGUF':<26} {'load s':>7} {'gen tok/s':>10} {'prompt tok/s':>13} {'peak RSS MB':>12}"
    )
    print(
        f"{server.model_name[:26]:<26} {load_s:>7.1f} {statistics.median(rates):>10.1f} "
        f"{statistics.median(prompt_rates):>13.1f} {peak_mb:>12.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--gguf", help="also measure this GGUF model file")
    args = parser.parse_args()
    asyncio.run(_bench_offline(args.rounds))
    if args.gguf:
        _bench_gguf(args.gguf)


if __name__ == "__main__":
    main()
