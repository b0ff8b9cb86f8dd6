"""A conversation's first customer line is matched to the profile's intents and stored with
it, whichever model answers; a classifier that fails never fails the turn."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from helpline.app import build_assistant
from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.events import TurnDone, TurnEvent
from helpline.messages import UserMessage
from helpline.models.scripted import ScriptedModel
from helpline.store import Store
from helpline.store.tables import Conversation
from helpline.understanding.first_intent import FirstIntents
from tests.fake_openai import FakeOpenAI, text_reply


async def _turn(assistant: Assistant, conversation_id: str, text: str) -> list[TurnEvent]:
    return [event async for event in assistant.run_turn(conversation_id, UserMessage(content=text))]


def _intent(store: Store, conversation_id: str) -> str | None:
    with store.engine.connect() as connection:
        query = select(Conversation.intent).where(Conversation.id == conversation_id)
        return connection.execute(query).scalar_one()


async def test_an_openai_compatible_model_s_conversation_gets_its_first_line_s_intent(
    store: Store, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(text_reply("Sorry to hear that."), text_reply("Let me look."))
    settings = Settings(base_url=fake_openai.base_url, api_key="test-key", model="fake-model")
    assistant = build_assistant(settings, store=store)
    conversation_id = assistant.new_conversation()
    untouched = assistant.new_conversation()
    try:
        first = await _turn(assistant, conversation_id, "I want a refund, my food arrived cold")
        assert isinstance(first[-1], TurnDone)
        await assistant.wait_idle()
        assert _intent(store, conversation_id) == "refund_request"

        await _turn(assistant, conversation_id, "how do I reset my password?")
        await assistant.wait_idle()
        assert _intent(store, conversation_id) == "refund_request"  # the first line's stays
        assert _intent(store, untouched) is None
    finally:
        await assistant.model.aclose()
    assert len(fake_openai.requests) == 2  # the model was asked; the classifier is local


async def test_a_broken_classifier_is_logged_and_the_turn_goes_on(
    sqlite_store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "intents.toml").write_text("[intents.refund\nleads_to = ", encoding="utf-8")
    model = ScriptedModel(ScriptedModel.text("Hello! How can I help?"))
    assistant = Assistant(model, sqlite_store, intents=FirstIntents(tmp_path))
    conversation_id = assistant.new_conversation()

    with caplog.at_level(logging.ERROR, logger="helpline"):
        events = await _turn(assistant, conversation_id, "I want a refund")
        await assistant.wait_idle()
    assert isinstance(events[-1], TurnDone)
    assert _intent(sqlite_store, conversation_id) is None
    assert "intent classifier" in caplog.text and str(tmp_path) in caplog.text
