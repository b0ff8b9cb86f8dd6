"""The anchor for ``bench.server_load``: the seed's chat loop as a user following the
cookbook would serve it. The ``openai`` SDK streams from the model, the history is a list in
memory, and FastAPI sends each delta as a server-sent event from a ``StreamingResponse``.

It speaks the same HTTP as Helpline (``POST /api/conversations``, ``POST
/api/conversations/{id}/messages`` answering ``text`` and ``done`` events, ``GET
/api/conversations/{id}``), so the same load client measures both against the same paced
fake model. It stores nothing and calls no tools: what it costs is the floor a served loop
costs.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI
from pydantic import BaseModel


class MessageIn(BaseModel):
    text: str


def create_anchor_app(model_url: str, prompt: str, model: str = "fake-model") -> FastAPI:
    """The cookbook's loop behind FastAPI, talking to the model at ``model_url``."""
    client = AsyncOpenAI(base_url=model_url, api_key="bench", max_retries=0)
    histories: dict[str, list[dict[str, Any]]] = {}
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/conversations", status_code=201)
    async def create_conversation() -> dict[str, str]:
        conversation_id = secrets.token_hex(8)
        histories[conversation_id] = [{"role": "system", "content": prompt}]
        return {"id": conversation_id, "token": secrets.token_urlsafe(32)}

    @app.get("/api/conversations/{conversation_id}")
    async def get_conversation(conversation_id: str) -> dict[str, Any]:
        return {"id": conversation_id, "messages": _history(histories, conversation_id)}

    @app.post("/api/conversations/{conversation_id}/messages")
    async def send_message(conversation_id: str, message: MessageIn) -> StreamingResponse:
        history = _history(histories, conversation_id)
        history.append({"role": "user", "content": message.text})

        async def events() -> AsyncIterator[str]:
            stream = await client.chat.completions.create(
                model=model,
                messages=history,  # type: ignore[arg-type]
                stream=True,
            )
            parts = []
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    delta = chunk.choices[0].delta.content
                    parts.append(delta)
                    yield f"event: text\ndata: {json.dumps({'delta': delta})}\n\n"
            history.append({"role": "assistant", "content": "".join(parts)})
            yield "event: done\ndata: {}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def _history(histories: dict[str, list[dict[str, Any]]], conversation_id: str) -> list[Any]:
    if conversation_id not in histories:
        raise HTTPException(404, "No such conversation.")
    return histories[conversation_id]
