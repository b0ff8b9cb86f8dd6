"""Reading a receipt through a vision model: request shape, validation, retry once."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from helpline.models.base import (
    ChatModel,
    Finish,
    ModelEvent,
    ResponseFormat,
    StreamRestart,
    TextDelta,
)
from helpline.models.openai_compat import OpenAICompatModel
from helpline.receipts import ReceiptReadError, read_receipt, read_receipt_with_model
from tests.fake_openai import FakeOpenAI, json_reply

GOOD = {
    "date": "2018-12-25",
    "items": [{"name": "ELEGANT SCH TR BAG", "quantity": 1, "price_in_cents": 8091}],
    "currency": "MYR",
    "total_in_cents": 8090,
}
IMAGE = b"\x89PNG\r\n\x1a\n-not-really-decoded-by-the-model-path"


class ScriptedVisionModel:
    """Answers each request with the next scripted list of events and records the requests."""

    def __init__(self, *answers: list[ModelEvent]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[list[dict[str, Any]], ResponseFormat | None]] = []

    @property
    def name(self) -> str:
        return "scripted vision model"

    async def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        response_format: ResponseFormat | None = None,
    ) -> AsyncIterator[ModelEvent]:
        assert tools is None
        self.requests.append((json.loads(json.dumps(messages)), response_format))
        for event in self.answers.pop(0):
            yield event

    async def aclose(self) -> None:
        """Nothing to release."""


def chunks(text: str, size: int = 7) -> list[ModelEvent]:
    """The answer streamed in small pieces, as a real model sends it."""
    events: list[ModelEvent] = [TextDelta(text[i : i + size]) for i in range(0, len(text), size)]
    return [*events, Finish("stop")]


async def test_request_carries_the_image_and_the_schema() -> None:
    model = ScriptedVisionModel(chunks(json.dumps(GOOD)))
    assert isinstance(model, ChatModel)

    receipt = await read_receipt_with_model(model, IMAGE, "image/png")

    assert receipt.total_in_cents == 8090
    assert receipt.items[0].price_in_cents == 8091
    messages, response_format = model.requests[0]
    assert [m["role"] for m in messages] == ["system", "user"]
    text_part, image_part = messages[1]["content"]
    assert text_part["type"] == "text"
    assert image_part == {
        "type": "image_url",
        "image_url": {
            "url": "data:image/png;base64," + base64.b64encode(IMAGE).decode(),
            "detail": "high",
        },
    }
    assert response_format is not None
    assert response_format.name == "receipt"
    assert response_format.schema["required"] == ["date", "items", "currency", "total_in_cents"]


async def test_restarted_stream_discards_the_partial_answer() -> None:
    model = ScriptedVisionModel(
        [TextDelta('{"date": "2018-'), StreamRestart("connection reset"), *chunks(json.dumps(GOOD))]
    )
    receipt = await read_receipt_with_model(model, IMAGE, "image/jpeg")
    assert receipt.date == "2018-12-25"
    assert len(model.requests) == 1


async def test_invalid_answer_is_retried_once_with_the_error() -> None:
    wrong = {**GOOD, "date": "25/12/2018", "total_in_cents": -5}
    model = ScriptedVisionModel(chunks(json.dumps(wrong)), chunks(json.dumps(GOOD)))

    receipt = await read_receipt_with_model(model, IMAGE, "image/jpeg")

    assert receipt.date == "2018-12-25"
    retry, _ = model.requests[1]
    assert [m["role"] for m in retry] == ["system", "user", "assistant", "user"]
    assert retry[2]["content"] == json.dumps(wrong)
    assert "date" in retry[3]["content"]
    assert "total_in_cents" in retry[3]["content"]


async def test_two_invalid_answers_raise_a_customer_safe_error() -> None:
    model = ScriptedVisionModel(chunks("I cannot see a receipt."), chunks('{"total": 5}'))
    with pytest.raises(ReceiptReadError, match="sharper photo") as caught:
        await read_receipt_with_model(model, IMAGE, "image/jpeg")
    assert "Traceback" not in str(caught.value)
    assert len(model.requests) == 2


async def test_fenced_json_is_accepted() -> None:
    model = ScriptedVisionModel(chunks("```json\n" + json.dumps(GOOD) + "\n```"))
    assert (await read_receipt_with_model(model, IMAGE, "image/jpeg")).currency == "MYR"


async def test_reader_uses_the_model_when_given_one() -> None:
    model = ScriptedVisionModel(chunks(json.dumps(GOOD)))
    progress: list[str] = []
    receipt = await read_receipt(IMAGE, "image/png", model=model, on_progress=progress.append)
    assert receipt.total_in_cents == 8090
    assert progress == ["Reading the receipt…"]


@pytest.mark.parametrize(
    "written",
    [
        "2023-09-27T19:44:44",
        "2023-09-27T19:44:44Z",
        "2023-09-27T19:44:44.250+08:00",
        "2023-09-27T23:44:44-05:00",
        "2023-09-27 19:44",
    ],
)
async def test_a_vision_model_answering_with_a_datetime_keeps_the_date(
    fake_openai: FakeOpenAI, written: str
) -> None:
    fake_openai.script(json_reply({**GOOD, "date": written}))
    model = OpenAICompatModel(fake_openai.base_url, "fake-vision", "test-key", max_retries=0)
    try:
        receipt = await read_receipt_with_model(model, IMAGE, "image/jpeg")
    finally:
        await model.aclose()
    assert receipt.date == "2023-09-27"  # the date as printed, whatever the offset
    assert len(fake_openai.requests) == 1


async def test_an_answer_that_fails_validation_is_logged_for_the_operator(
    fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = {**GOOD, "date": "27/09/2023"}
    fake_openai.script(json_reply(wrong), json_reply({**GOOD, "currency": "RM"}))
    model = OpenAICompatModel(fake_openai.base_url, "fake-vision", "test-key", max_retries=0)
    caplog.set_level(logging.WARNING, logger="helpline")
    try:
        with pytest.raises(ReceiptReadError):
            await read_receipt_with_model(model, IMAGE, "image/jpeg")
    finally:
        await model.aclose()
    warnings = [r for r in caplog.records if r.name == "helpline" and r.levelno == logging.WARNING]
    assert len(warnings) == 2
    first, second = (record.getMessage() for record in warnings)
    assert "fake-vision" in first and "1 of 2" in first
    assert "date" in first and "27/09/2023" in first
    assert "2 of 2" in second and "currency" in second and "'RM'" in second
