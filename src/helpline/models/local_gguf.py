"""Bring your own local LLM: a GGUF file run in-process by llama.cpp (``xllamacpp``).

llama.cpp's own OpenAI-compatible HTTP server is started inside this process on
127.0.0.1 and a free port; the normal OpenAI-compatible backend then talks to it, so
streaming, tool calls and structured output work exactly as with a hosted model.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from helpline.models.base import ModelError, ModelEvent, ResponseFormat

_GGUF_MAGIC = b"GGUF"
_READY_TIMEOUT_S = 120.0


class LocalServer:
    """A running llama.cpp server for one GGUF file; ``close()`` (or ``with``) stops it."""

    def __init__(self, server: Any, address: str, model_name: str) -> None:
        self._server: Any = server
        self.base_url = f"{address.rstrip('/')}/v1"
        """The OpenAI-compatible base URL, e.g. ``http://127.0.0.1:40123/v1``."""
        self.model_name = model_name
        """The name the server answers to (the file's stem)."""

    def close(self) -> None:
        """Stop the server and free the model (llama.cpp does both when the server is dropped)."""
        self._server = None

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ModelError(
            f"GGUF model file not found: {path}. Check the path given to --gguf or HELPLINE_GGUF."
        )
    with path.open("rb") as handle:
        if handle.read(4) != _GGUF_MAGIC:
            raise ModelError(
                f"{path} is not a GGUF model file. Download a .gguf file (llama.cpp's format) "
                "and pass its path to --gguf or HELPLINE_GGUF."
            )


def _wait_until_ready(address: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{address}/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise ModelError(
                f"The local model server at {address} did not become ready in {timeout:.0f} s. "
                "Try a smaller model or a smaller --ctx-size."
            )
        time.sleep(0.05)


def start_local_server(
    gguf_path: str, *, ctx_size: int = 4096, threads: int | None = None
) -> LocalServer:
    """Load ``gguf_path`` and serve it on 127.0.0.1 (a free port); blocks until it answers.

    ``threads`` defaults to every CPU core. Raises :class:`ModelError` with what to do when the
    file is missing or not a GGUF model, xllamacpp is not installed, or llama.cpp can't load it.
    """
    path = Path(gguf_path).expanduser().resolve()
    _check_file(path)
    try:
        import xllamacpp
    except ImportError as exc:
        raise ModelError(
            "Running a GGUF model needs the xllamacpp package: pip install 'helpline[local]'."
        ) from exc
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = {path.stem}
    params.n_ctx = ctx_size
    params.n_parallel = 1
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # the OS picks a free port; the server reports which
    params.verbosity = -1
    params.use_jinja = True  # the model's own chat template, with tool calls
    cores = threads or os.cpu_count() or 1
    params.cpuparams.n_threads = cores
    params.cpuparams_batch.n_threads = cores
    try:
        server = xllamacpp.Server(params)
    except RuntimeError as exc:
        raise ModelError(
            f"llama.cpp could not load {path.name} ({exc}). The file may be damaged, or need a "
            "newer llama.cpp: upgrade with pip install -U xllamacpp."
        ) from exc
    address = str(server.listening_address)
    local = LocalServer(server, address, path.stem)
    try:
        _wait_until_ready(address, _READY_TIMEOUT_S)
    except ModelError:
        local.close()
        raise
    return local


class LocalGGUFModel:
    """A chat model backed by a local GGUF file; the server starts on first use."""

    def __init__(self, gguf_path: str, *, ctx_size: int = 4096, threads: int | None = None) -> None:
        self.gguf_path = gguf_path
        self.ctx_size = ctx_size
        self.threads = threads
        self._server: LocalServer | None = None
        self._backend: Any = None
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return f"{Path(self.gguf_path).name} (local GGUF model, llama.cpp)"

    @property
    def base_url(self) -> str | None:
        """The local server's OpenAI-compatible URL once started, else None."""
        return self._server.base_url if self._server else None

    async def _started(self) -> Any:
        async with self._lock:
            if self._backend is None:
                from helpline.models.openai_compat import OpenAICompatModel

                self._server = await asyncio.to_thread(
                    start_local_server,
                    self.gguf_path,
                    ctx_size=self.ctx_size,
                    threads=self.threads,
                )
                self._backend = OpenAICompatModel(
                    self._server.base_url, self._server.model_name, max_retries=1
                )
            return self._backend

    async def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        response_format: ResponseFormat | None = None,
    ) -> AsyncIterator[ModelEvent]:
        """Stream from the local server (started on the first call: loading takes seconds)."""
        backend = await self._started()
        async for event in backend.stream(messages, tools, response_format):
            yield event

    async def aclose(self) -> None:
        """Close the HTTP client and stop the local server."""
        if self._backend is not None:
            await self._backend.aclose()
            self._backend = None
        if self._server is not None:
            self._server.close()
            self._server = None
