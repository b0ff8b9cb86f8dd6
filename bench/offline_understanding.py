"""How well the offline assistant understands a customer's first message, and what it costs.

For every labelled line (tests/data/understanding/) the first reply is checked against what
the profile says the intent leads to: the right article found by the help-centre search,
the right tool, or the one question the tool still needs. Dialogues ("a problem, then a
name") must file exactly one ticket, for that name, as soon as the name is given.

    python -m bench.offline_understanding [--json]

The development lines are among each profile's examples (with lines written for the
classifier), so they are scored by 5-fold cross-validation: each fold is read by a
classifier trained on the profile's examples less that fold's lines. test.jsonl (and the
electronics lines marked test) are read by the shipped classifier; they are reported,
never used to choose examples, features or thresholds. The multilingual lines are never
examples either. outside.jsonl (customer lines from other services' public sets, see
tests/data/understanding/OUTSIDE.md) is read by the shipped classifier and only measured:
it is never used to choose examples, features, thresholds or models. Also printed: the classifier's own top intent accuracy, time per turn
(mean, p99, one line at a time, classifier loaded), a fresh process's first message (the
embedding table and weights are read then) and the CPU the layer adds to start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tests.tool_stubs import TOOLS

from helpline.messages import ToolCall
from helpline.models.base import TextDelta, ToolCallReady
from helpline.models.offline import OfflineModel
from helpline.support.knowledge import HelpCenter
from helpline.support.profile import DEFAULT_PROFILE, load_profile
from helpline.understanding.intents import IntentMatcher, IntentSpec, read_intents

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "understanding"
ALL_TOOLS = list(TOOLS.values())
FOLDS = 5
SEED = 20261203


@dataclass
class Reply:
    text: str
    calls: list[ToolCall]


async def respond(model: OfflineModel, messages: list[dict[str, Any]]) -> Reply:
    events = [e async for e in model.stream(messages, ALL_TOOLS)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return Reply(text, [e.call for e in events if isinstance(e, ToolCallReady)])


def read_lines(name: str, split: str | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]
    return [r for r in rows if split is None or r.get("split", split) == split]


class Judge:
    """Whether a first reply is what the profile says the line's intent leads to."""

    def __init__(self, profile_folder: Path) -> None:
        specs, _ = read_intents(profile_folder / "intents.toml")
        self.specs: dict[str, IntentSpec] = {s.name: s for s in specs}
        self.help_center = HelpCenter(load_profile(profile_folder).articles)

    def ok(self, line: dict[str, Any], reply: Reply) -> bool:
        spec = self.specs[line["intent"]]
        names = [c.function.name for c in reply.calls]
        text = reply.text.lower()
        kind = spec.leads_to
        if kind == "article":
            if names != ["search_help_center"]:
                return False
            query = json.loads(reply.calls[0].function.arguments)["query"]
            found = self.help_center.search(query, k=1)
            return bool(found) and found[0].article_id == spec.article
        if kind == "order":
            if line.get("order_id") and line.get("email"):
                return names == ["lookup_order"]
            if line.get("email"):
                return names in (["list_recent_orders"], ["lookup_order"])
            return not names and ("order number" in text or "email" in text)
        if kind == "refund":
            if names:
                return names[0] in {"request_refund", "lookup_order"}
            return "order number" in text or "email" in text
        if kind == "human":
            return names == ["escalate_to_human"] or (not names and "help with" in text)
        if kind == "problem":
            return names == ["create_customer_ticket"] or (not names and "your name" in text)
        if kind == "reply":
            return not names and (spec.reply or "").lower() in text
        if kind == "greeting":
            return not names and "what can i do for you" in text
        if kind == "thanks":
            return not names and "welcome" in text
        if kind == "goodbye":
            return not names and ("good day" in text or "getting in touch" in text)
        return not names and "support assistant" in text


async def first_replies(
    model: OfflineModel, judge: Judge, lines: Sequence[dict[str, Any]]
) -> tuple[list[bool], list[float]]:
    results, times = [], []
    for line in lines:
        start = time.perf_counter()
        reply = await respond(model, [{"role": "user", "content": line["text"]}])
        times.append(time.perf_counter() - start)
        results.append(judge.ok(line, reply))
    return results, times


async def dialogue_ok(model: OfflineModel, dialogue: dict[str, Any]) -> bool:
    """Exactly one ticket, filed at the turn that gives the name, for that name."""
    messages: list[dict[str, Any]] = []
    tickets: list[tuple[int, str]] = []
    for index, turn in enumerate(dialogue["turns"]):
        messages.append({"role": "user", "content": turn})
        for _ in range(3):
            reply = await respond(model, messages)
            messages.append(
                {
                    "role": "assistant",
                    "content": reply.text,
                    "tool_calls": [c.model_dump() for c in reply.calls] or None,
                }
            )
            if not reply.calls:
                break
            for call in reply.calls:
                if call.function.name == "create_customer_ticket":
                    tickets.append((index, json.loads(call.function.arguments)["name"]))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"id": 7}'})
    want = dialogue["name"].lower()
    return (
        len(tickets) == 1
        and tickets[0] == (dialogue["name_turn"], tickets[0][1])
        and (tickets[0][1].lower() == want)
    )


def startup_cpu_s(profile: Path, runs: int = 3) -> float:
    """Whole-process CPU the understanding layer adds before the first message.

    Importing it and reading the profile's intents, against the same process without it
    (the profile and the rest of the offline assistant are loaded either way); the
    embedding model and the examples' vectors are loaded on the first message instead.
    """
    base = (
        "import helpline.support.profile, helpline.models.offline_intents, "
        "helpline.models.offline_replies, helpline.models.base"
    )
    code = (
        base
        + ";from helpline.models.offline import OfflineModel;OfflineModel(profile={!r}).matcher"
    )

    def cpu(script: str) -> float:
        best = float("inf")
        for _ in range(runs):
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"import resource;{script};"
                    "r=resource.getrusage(resource.RUSAGE_SELF);print(r.ru_utime+r.ru_stime)",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            best = min(best, float(out.stdout.split()[-1]))
        return best

    return max(0.0, cpu(code.format(str(profile))) - cpu(base))


class HeldOutModel(OfflineModel):
    """The offline assistant reading with a given matcher (one trained without some lines)."""

    def __init__(self, profile: Path, matcher: IntentMatcher) -> None:
        super().__init__(profile=profile)
        self._held_out = matcher

    @property
    def matcher(self) -> IntentMatcher | None:
        return self._held_out


def cross_validated(
    profile: Path, lines: Sequence[dict[str, Any]], folds: int = FOLDS
) -> list[tuple[IntentMatcher, list[dict[str, Any]]]]:
    """Each fold of ``lines`` with a matcher trained on the profile's examples less that fold.

    The development lines are among the profile's examples, so a line is only ever read by
    a classifier that did not see it.
    """
    specs, threshold = read_intents(profile / "intents.toml")
    order = list(range(len(lines)))
    random.Random(SEED).shuffle(order)
    out = []
    for fold in range(folds):
        held = [lines[i] for i in order[fold::folds]]
        unseen = {line["text"].casefold() for line in held}
        kept = [
            replace(spec, examples=tuple(e for e in spec.examples if e.casefold() not in unseen))
            for spec in specs
        ]
        matcher = IntentMatcher(kept, threshold)
        matcher.match("hello")  # trains here, not inside the first timed turn
        out.append((matcher, held))
    return out


def scored(
    lines: Sequence[dict[str, Any]], results: Sequence[bool], matched: Sequence[str | None]
) -> dict[str, Any]:
    per_intent: dict[str, list[bool]] = defaultdict(list)
    for line, ok in zip(lines, results, strict=True):
        per_intent[line["intent"]].append(ok)
    return {
        "lines": len(lines),
        "accuracy": sum(results) / max(1, len(results)),
        "intent_accuracy": sum(m == line["intent"] for m, line in zip(matched, lines, strict=True))
        / max(1, len(lines)),
        "per_intent": {k: sum(v) / len(v) for k, v in sorted(per_intent.items())},
    }


def read_split(prefix: str, split: str) -> list[dict[str, Any]]:
    return read_lines(f"{split}.jsonl") if prefix == "" else read_lines(f"{prefix}.jsonl", split)


def top_intents(matcher: IntentMatcher, lines: Sequence[dict[str, Any]]) -> list[str | None]:
    """The classifier's own top intent for each line (None below the threshold)."""
    matches = [matcher.match(line["text"]) for line in lines]
    return [m.intent.name if m else None for m in matches]


def measure(profile: Path, prefix: str) -> dict[str, Any]:
    judge = Judge(profile)
    out: dict[str, Any] = {"profile": profile.name}
    times: list[float] = []
    dev = read_split(prefix, "dev")
    lines, results, matched = [], [], []
    for matcher, held in cross_validated(profile, dev):
        held_out = HeldOutModel(profile, matcher)
        ok, spent = asyncio.run(first_replies(held_out, judge, held))
        lines += held
        results += ok
        matched += top_intents(matcher, held)
        times += spent
    out["dev"] = scored(lines, results, matched)
    model = OfflineModel(profile=profile)
    shipped = model.matcher
    assert shipped is not None
    shipped.match("hello")  # loads here, not inside the first timed turn
    test = read_split(prefix, "test")
    ok, spent = asyncio.run(first_replies(model, judge, test))
    times += spent
    out["test"] = scored(test, ok, top_intents(shipped, test))
    if prefix == "":
        other = read_lines("multilingual.jsonl")
        ok, _ = asyncio.run(first_replies(model, judge, other))
        out["multilingual"] = scored(other, ok, top_intents(shipped, other))
        outside = read_lines("outside.jsonl")
        ok, _ = asyncio.run(first_replies(model, judge, outside))
        out["outside"] = scored(outside, ok, top_intents(shipped, outside))
        dialogues = read_lines("dialogues.jsonl")
        done = [asyncio.run(dialogue_ok(model, d)) for d in dialogues]
        out["dialogues"] = {"count": len(done), "success": sum(done) / max(1, len(done))}
    ordered = sorted(times)
    out["turn_ms"] = {
        "mean": statistics.fmean(ordered) * 1000,
        "p99": ordered[int(0.99 * (len(ordered) - 1))] * 1000,
    }
    out["first_message_s"] = first_message_s(profile)
    return out


def first_message_s(profile: Path) -> float:
    """Wall seconds of a fresh process's first reply: embeddings and weights are read then."""
    code = (
        "import asyncio,time;from helpline.models.offline import OfflineModel;"
        "from bench.offline_understanding import respond;"
        f"m=OfflineModel(profile={str(profile)!r});t=time.perf_counter();"
        "asyncio.run(respond(m,[{'role':'user','content':'where is my order'}]));"
        "print(time.perf_counter()-t)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    profiles = [(DEFAULT_PROFILE, "")]
    electronics = DEFAULT_PROFILE.parent / "electronics"
    if (electronics / "intents.toml").is_file() and (DATA / "electronics.jsonl").is_file():
        profiles.append((electronics, "electronics"))
    results = [measure(folder, prefix) for folder, prefix in profiles]
    results[0]["startup_cpu_s"] = startup_cpu_s(DEFAULT_PROFILE)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"profile {r['profile']}")
        outside = r.get("outside", {}).get("per_intent", {})
        print(
            "| intent | dev (cross-validated) | test (untouched) | outside (measure only) |\n"
            "| --- | --- | --- | --- |"
        )
        for intent, dev in r["dev"]["per_intent"].items():
            cells = [r["test"]["per_intent"].get(intent), outside.get(intent)]
            shown = " | ".join("" if c is None else f"{c:.0%}" for c in cells)
            print(f"| {intent} | {dev:.0%} | {shown} |")
        for split in ("dev", "test", "multilingual", "outside"):
            if split in r:
                s = r[split]
                label = "outside (measure only, never used to choose anything)"
                print(
                    f"{label if split == 'outside' else split}: first reply right "
                    f"{s['accuracy']:.1%} of {s['lines']}, "
                    f"classifier's top intent right {s['intent_accuracy']:.1%}"
                )
        if "dialogues" in r:
            print(f"dialogues: {r['dialogues']['success']:.1%} of {r['dialogues']['count']}")
        t = r["turn_ms"]
        print(f"per turn: {t['mean']:.2f} ms mean, {t['p99']:.2f} ms p99")
        print(f"first message in a fresh process: {r['first_message_s']:.2f} s")
        if "startup_cpu_s" in r:
            print(f"start-up CPU added by the understanding layer: {r['startup_cpu_s']:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
