"""The receipt tool: ``analyze_receipt_image(image_url)`` → date, items, currency, total."""

from __future__ import annotations

from typing import Any

from helpline.store import IMAGE_SCHEME
from helpline.support.profile import Profile, Settings
from helpline.tools import Tool, ToolContext, ToolError, tool


async def _load(image_url: str, context: ToolContext) -> tuple[bytes, str]:
    """The image's bytes and type: an ``image://`` reference comes from this conversation's
    uploads; anything else is fetched or read safely."""
    reference = image_url.strip()
    if reference.startswith(IMAGE_SCHEME):
        record = await context.store.call(context.store.images.get, reference)
        if record is None or record.conversation_id != context.conversation_id:
            raise ToolError(
                f"There is no shared image {image_url} in this conversation. "
                "Ask the customer to upload the receipt photo again."
            )
        return record.data, record.mime
    from helpline.images import ImageError, load_image  # fetching and decoding: loaded on use

    try:
        image = await load_image(reference, local_files_allowed=context.local_files_allowed)
    except ImageError as exc:
        raise ToolError(str(exc)) from exc
    return image.data, image.mime


def receipt_tool(settings: Settings) -> Tool:
    """``analyze_receipt_image``; a receipt that shows no currency is in ``settings.currency``."""
    currency = settings.currency

    @tool(activity="Reading your receipt", done="Receipt read")
    async def analyze_receipt_image(image_url: str, context: ToolContext) -> dict[str, Any]:
        """Read a receipt photo the customer shared: its date, items, currency and total.

        Args:
            image_url: The image exactly as the customer shared it: an image://… reference, a public https link, or a file path they typed in the terminal.
        """
        from helpline.receipts import ReceiptReadError, read_receipt

        context.progress("Fetching the image…")
        data, mime = await _load(image_url, context)
        try:
            receipt = await read_receipt(
                data,
                mime,
                context.vision_model,
                on_progress=context.progress,
                default_currency=currency,
            )
        except ReceiptReadError as exc:
            raise ToolError(str(exc)) from exc
        result = receipt.model_dump(mode="json")
        await context.store.call(
            lambda: context.store.receipts.add(
                result,
                image_url,
                conversation_id=context.conversation_id,
                tool_call_id=context.tool_call_id,
            )
        )
        return result

    return analyze_receipt_image


def receipt_tools(profile: Profile) -> list[Tool]:
    """The receipt tool reading amounts in ``profile``'s currency when a receipt shows none."""
    return [receipt_tool(profile.settings)]


analyze_receipt_image = receipt_tool(Settings())
"""The receipt tool with the default policy, for assistants built without a profile."""
