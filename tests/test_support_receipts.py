"""The ``analyze_receipt_image`` tool: shared images, offline OCR, a vision model over HTTP."""

from __future__ import annotations

import json

from helpline.messages import ToolCall
from helpline.models.openai_compat import OpenAICompatModel
from helpline.store import Store
from helpline.support.receipts import analyze_receipt_image
from helpline.tools import ToolContext, Toolset
from tests.conftest import SHOP_RECEIPT
from tests.fake_openai import FakeOpenAI, json_reply

RECEIPT = {
    "date": "2018-12-25",
    "items": [{"name": "School bag", "quantity": 1, "price_in_cents": 8090}],
    "currency": "MYR",
    "total_in_cents": 8090,
}


def _shared_receipt(store: Store, conversation_id: str) -> str:
    data = SHOP_RECEIPT.read_bytes()
    return store.images.add(data, "image/jpeg", "upload:receipt.jpg", conversation_id).reference


async def _call(context: ToolContext, image_url: str) -> str:
    call = ToolCall.make(
        context.tool_call_id, "analyze_receipt_image", json.dumps({"image_url": image_url})
    )
    return await Toolset([analyze_receipt_image]).call(call, context)


async def test_an_uploaded_receipt_is_read_offline_and_stored(sqlite_store: Store) -> None:
    conversation_id = sqlite_store.conversations.create()
    reference = _shared_receipt(sqlite_store, conversation_id)
    progress: list[str] = []
    context = ToolContext(conversation_id, "call_1", sqlite_store, progress=progress.append)
    result = json.loads(await _call(context, reference))
    assert (result["total_in_cents"], result["date"], result["currency"]) == (
        8090,
        "2018-12-25",
        "MYR",
    )
    assert sqlite_store.receipts.for_conversation(conversation_id) == [result]
    assert progress[0] == "Fetching the image…" and len(progress) > 1


async def test_another_conversations_image_is_refused(sqlite_store: Store) -> None:
    owner = sqlite_store.conversations.create()
    reference = _shared_receipt(sqlite_store, owner)
    stranger = sqlite_store.conversations.create()
    result = await _call(ToolContext(stranger, "call_2", sqlite_store), reference)
    assert result.startswith(f"Error: There is no shared image {reference} in this conversation")


async def test_a_server_path_is_never_read_over_the_web(sqlite_store: Store) -> None:
    conversation_id = sqlite_store.conversations.create()
    context = ToolContext(conversation_id, "call_3", sqlite_store, local_files_allowed=False)
    result = await _call(context, str(SHOP_RECEIPT))
    assert result.startswith("Error: Over the web, Helpline reads uploaded images and public links")
    assert sqlite_store.receipts.for_conversation(conversation_id) == []


async def test_a_private_address_is_refused(sqlite_store: Store) -> None:
    conversation_id = sqlite_store.conversations.create()
    result = await _call(
        ToolContext(conversation_id, "call_4", sqlite_store), "http://169.254.169.254/latest/r.jpg"
    )
    assert result.startswith("Error:") and "Share a public link or upload" in result


async def test_a_vision_model_reads_it_with_structured_output(
    sqlite_store: Store, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(json_reply(RECEIPT))
    vision = OpenAICompatModel(fake_openai.base_url, "grok-vision", "key")
    conversation_id = sqlite_store.conversations.create()
    reference = _shared_receipt(sqlite_store, conversation_id)
    context = ToolContext(conversation_id, "call_5", sqlite_store, vision_model=vision)
    try:
        result = json.loads(await _call(context, reference))
    finally:
        await vision.aclose()
    assert result == RECEIPT
    body = fake_openai.requests[0].body
    assert body["model"] == "grok-vision"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"]
    image_parts = [
        part
        for message in body["messages"]
        if isinstance(message["content"], list)
        for part in message["content"]
        if part["type"] == "image_url"
    ]
    (part,) = image_parts
    assert part["image_url"]["detail"] == "high"
    assert part["image_url"]["url"].startswith("data:image/jpeg;base64,")
