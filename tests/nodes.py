"""Helpline nodes as real processes (``helpline serve``), and a Redis of the test's own."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from helpline.store import Store

ADMIN = "agent-secret-key"
SHARED_REDIS = os.environ.get("HELPLINE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_prefix() -> str:
    """A key prefix of this test's own, so tests running at once never share a bucket."""
    return f"helpline-test-{uuid.uuid4().hex[:12]}:"


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """Gone at once, as a machine that fails: nothing is finished or flushed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_node(
    folder: Path, database_url: str, env: dict[str, str], *flags: str, name: str = "node"
) -> Node:
    """``helpline serve`` in its own process; returned once ``/healthz`` answers."""
    node = launch_node(folder, database_url, env, *flags, name=name)
    wait_until_serving(node)
    return node


def launch_node(
    folder: Path, database_url: str, env: dict[str, str], *flags: str, name: str = "node"
) -> Node:
    """``helpline serve`` in its own process, just started."""
    port = free_port()
    log = folder / f"{name}-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "helpline.cli", "serve", "--port", str(port), *flags],
        env={
            **os.environ,
            "HELPLINE_DATABASE_URL": database_url,
            "HELPLINE_ADMIN_KEY": ADMIN,
            **env,
        },
        cwd=folder,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Node(process, f"http://127.0.0.1:{port}", log)


def wait_until_serving(node: Node) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and node.process.poll() is None:
        try:
            if httpx.get(node.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    node.stop()
    raise AssertionError(f"{node.log.name} did not start:\n{node.output()}")


@contextmanager
def nodes(
    folder: Path, database_url: str, env: dict[str, str], count: int, *flags: str
) -> Iterator[list[Node]]:
    """``count`` nodes started side by side (at once), stopped afterwards."""
    Store.open(database_url).close()  # migrated once, before they start
    started = [
        launch_node(folder, database_url, env, *flags, name=f"node{number}")
        for number in range(count)
    ]
    try:
        for node in started:
            wait_until_serving(node)
        yield started
    finally:
        for node in started:
            node.stop()


@contextmanager
def own_redis(folder: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own on a spare port (to stop while nodes use it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
