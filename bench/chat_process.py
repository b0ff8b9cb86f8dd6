"""``helpline chat`` measured from outside, as whole processes: the CPU it spends before it
is ready for the first message, the first turn's latency, and the steady state per turn;
and the seed's openai-SDK loop as a process reading the same messages.

Each run is a fresh process reading its messages from a pipe; its CPU (user + system) is the
operating system's account of the finished process. Bytecode is cached as in an installed
package (a warm-up run writes it to a private folder). Start-up is measured on a new
database and on one that already exists.

    .venv/bin/python -m bench.chat_process [--runs 5] [--turns 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELPLINE = Path(sys.executable).with_name("helpline")

_SEED_LOOP = """
import sys
from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key="bench")
messages = []
for line in sys.stdin:
    line = line.strip()
    if line == "exit":
        break
    messages.append({"role": "user", "content": line})
    stream = client.chat.completions.create(model="fake-model", messages=messages, stream=True)
    content = ""
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            content += chunk.choices[0].delta.content
            sys.stdout.write(chunk.choices[0].delta.content)
            sys.stdout.flush()
    messages.append({"role": "assistant", "content": content})
"""


@dataclass
class Run:
    """One finished process: its CPU in all, and for ``helpline chat`` its CPU when it was
    ready for the first message, the first turn's CPU and latency, and the later turns' CPU."""

    cpu: float
    ready_cpu: float = 0.0
    first_turn_cpu: float = 0.0
    first_turn: float = 0.0
    later_turns_cpu: float = 0.0


def _cpu_so_far(pid: int) -> float:
    """The CPU a running process has used so far (every thread, from the kernel's account)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def _environment(base_url: str, database: Path, bytecode: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        HELPLINE_BASE_URL=base_url,
        HELPLINE_MODEL="fake-model",
        HELPLINE_API_KEY="bench",
        HELPLINE_DATABASE_URL=f"sqlite:///{database}",
        PYTHONPYCACHEPREFIX=str(bytecode),
    )
    return env


def _finish(process: subprocess.Popen[bytes]) -> float:
    """Reap ``process``; the CPU it used, user and system."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
    return usage.ru_utime + usage.ru_stime


def helpline_run(env: dict[str, str], turns: int) -> Run:
    """``helpline chat --json`` answering ``turns`` messages. It is ready when it prints its
    status line; a turn lasts from writing the message to its ``done`` event."""
    process = subprocess.Popen(
        [HELPLINE, "chat", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdin and process.stdout and process.stderr
    process.stderr.readline()  # "Helpline · model · conversation …"
    run = Run(0.0, ready_cpu=_cpu_so_far(process.pid))
    for number in range(turns):
        before, started = _cpu_so_far(process.pid), time.perf_counter()
        process.stdin.write(b"tell me a story\n")
        process.stdin.flush()
        for line in process.stdout:
            if json.loads(line)["event"] in ("done", "error"):
                break
        used = _cpu_so_far(process.pid) - before
        if number == 0:
            run.first_turn, run.first_turn_cpu = time.perf_counter() - started, used
        else:
            run.later_turns_cpu += used
    process.stdin.write(b"exit\n")
    process.stdin.close()
    process.stdout.read()
    process.stderr.read()
    run.cpu = _finish(process)
    return run


def seed_run(base_url: str, turns: int, env: dict[str, str]) -> Run:
    """The seed's loop as a process: the openai SDK, the history in a list."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SEED_LOOP, base_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    assert process.stdin
    process.stdin.write(b"tell me a story\n" * turns + b"exit\n")
    process.stdin.close()
    return Run(_finish(process))


def measure(base_url: str, runs: int, turns: int) -> list[tuple[str, float, str, float | None]]:
    """The rows: start-up CPU (ready for the first message; a whole process leaving at once,
    on an existing and on a new database), the first turn's latency and CPU, CPU per turn
    in the steady state, and a ``turns``-turn session against the seed loop."""
    median = statistics.median
    with tempfile.TemporaryDirectory() as folder:
        bytecode = Path(folder) / "bytecode"
        env = _environment(base_url, Path(folder) / "existing.db", bytecode)
        helpline_run(env, 1)  # warm-up: bytecode written, the database created
        seed_run(base_url, 1, env)
        fresh: list[float] = []
        leaving: list[float] = []
        sessions: list[Run] = []
        seed_startup: list[float] = []
        seed_sessions: list[float] = []
        for number in range(runs):  # in turn, so that the machine's drift hits both alike
            new = _environment(base_url, Path(folder) / f"{number}.db", bytecode)
            fresh.append(helpline_run(new, 0).cpu)
            leaving.append(helpline_run(env, 0).cpu)
            seed_startup.append(seed_run(base_url, 0, env).cpu)
            sessions.append(helpline_run(env, turns))
            seed_sessions.append(seed_run(base_url, turns, env).cpu)
    per_turn = median(r.later_turns_cpu for r in sessions) / max(turns - 1, 1)
    return [
        ("chat: CPU until ready for the first message", median(r.ready_cpu for r in sessions)
         * 1000, "ms", 500.0),
        ("chat: whole process leaving at once, existing db", median(leaving) * 1000, "ms", None),
        ("chat: whole process leaving at once, new db", median(fresh) * 1000, "ms", None),
        ("chat: first turn latency", median(r.first_turn for r in sessions) * 1000, "ms", None),
        ("chat: first turn CPU", median(r.first_turn_cpu for r in sessions) * 1000, "ms", None),
        ("chat: CPU per later turn (steady state)", per_turn * 1000, "ms", None),
        ("seed loop: whole process leaving at once", median(seed_startup) * 1000, "ms", None),
        ("chat / seed loop: whole process leaving at once",
         median(h / s for h, s in zip(leaving, seed_startup, strict=True)), "×", None),
        (f"chat / seed loop: whole {turns}-turn session CPU",
         median(r.cpu / s for r, s in zip(sessions, seed_sessions, strict=True)), "×", None),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="processes per figure (median)")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    from bench.streaming import _start_server

    process, base_url = _start_server(args.tokens)
    try:
        rows = measure(base_url, args.runs, args.turns)
    finally:
        process.terminate()
    if args.json:
        print(json.dumps([{"metric": m, "value": round(v, 3), "unit": u, "target": t}
                          for m, v, u, t in rows]))  # fmt: skip
        return
    print(f"helpline chat as whole processes, {args.tokens}-token answers, median of "
          f"{args.runs} runs\n")  # fmt: skip
    for metric, value, unit, target in rows:
        verdict = "" if target is None else ("yes" if value <= target else "NO")
        shown = "" if target is None else f"≤ {target:g}"
        print(f"{metric:<46} {value:>9.2f}  {unit:<2} {shown:>7}  {verdict}")


if __name__ == "__main__":
    main()
