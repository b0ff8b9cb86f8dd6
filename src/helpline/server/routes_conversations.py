"""Customer API: start a conversation, send a message (answer streamed as SSE), read it back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from helpline.desk import DeskError
from helpline.messages import PROVIDER_KEYS, UserMessage
from helpline.models.openai_responses import forget_conversation_responses
from helpline.server.auth import Caller, bearer, check_conversation_access, is_admin, new_token
from helpline.server.customers import (
    check_customer_access,
    looks_like_customer_token,
    verify_customer,
)
from helpline.server.desk_auth import (
    agent_conversation_access,
    desk_agent,
    desk_of,
    refused,
)
from helpline.server.errors import ApiError
from helpline.server.inputs import (
    MAX_TEXT_CHARS,
    MAX_UPLOAD_BYTES,
    MessageIn,
    NonBlankText,
    read_message,
)
from helpline.server.ratelimit import enforce
from helpline.server.sse import EventStream
from helpline.server.state import ServerState, limit_client, limiting_failed_auth, server_state
from helpline.store import ConversationInfo
from helpline.store.agents import is_agent_key
from helpline.turns import TurnRefused, start_turn

router = APIRouter(
    prefix="/api/conversations", tags=["conversations"], dependencies=[Depends(limit_client)]
)

_ID_SHAPE = r"^[A-Za-z0-9_-]{1,64}$"
"""What the store's ids look like; anything else (a NUL byte, say) is refused before a query."""
ConversationId = Annotated[str, Path(pattern=_ID_SHAPE, description="The conversation's id.")]
State = Annotated[ServerState, Depends(server_state)]

T = TypeVar("T")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_REFUSED_STATUS = {"busy": 409, "unavailable": 503, "gone": 404}
"""A message that was not stored: another is being answered, the database failed, deleted."""
_RETRY_SOON = {"Retry-After": "5"}


class Created(BaseModel):
    id: str
    token: str
    """The customer's bearer secret for this conversation; shown once, stored only hashed."""
    customer_id: str | None = None
    """The signed-in customer it belongs to, when started with a customer token."""


class NewConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_token: str | None = Field(
        default=None,
        max_length=8192,
        description="A JWT the business's backend signed for a signed-in customer "
        "(claims sub, email, name, exp): the conversation belongs to that customer.",
    )


class ConversationOut(BaseModel):
    id: str
    status: str
    messages: list[dict[str, Any]]
    """OpenAI wire-form messages; the system prompt is shown to agents only."""
    customer_id: str | None = None
    """The signed-in customer it belongs to (the business's id for them); ``None``: anonymous."""


async def authorise_conversation(
    state: ServerState, request: Request, conversation_id: str, *, fresh: bool = False
) -> tuple[Caller, ConversationInfo]:
    """Who may act on this conversation, for every route that opens one: an agent's key, the
    admin key, the conversation's own token, or the signed-in customer it belongs to (their
    customer token); anyone else gets the same 403 as for an unknown id. ``fresh`` reads the
    conversation's current status from the database."""
    with limiting_failed_auth(request):
        credential = bearer(request)
        conversation = None if fresh else state.known.get(conversation_id)
        if conversation is None:
            store = state.assistant.store
            conversation = await store.call(store.conversations.get, conversation_id)
            if conversation is not None:
                state.known.remember(conversation)
        if is_agent_key(credential):
            caller = await agent_conversation_access(state, credential, conversation)
        elif looks_like_customer_token(credential) and not is_admin(
            credential, state.settings.admin_key
        ):
            customer = await verify_customer(state, credential)
            caller = check_customer_access(customer, conversation)
        else:
            caller = check_conversation_access(credential, conversation, state.settings.admin_key)
    assert conversation is not None  # access is refused for unknown ids
    return caller, conversation


@router.post("", status_code=201, response_model=Created)
async def create_conversation(
    state: State, request: Request, body: NewConversation | None = None
) -> Created:
    """Start a conversation. Keep the token: it is needed for every later request.

    With a ``customer_token``, the conversation belongs to that signed-in customer, whose
    token then opens it too; a token that does not verify is a 401 saying why."""
    customer = None
    if body is not None and body.customer_token is not None:
        with limiting_failed_auth(request):
            customer = await verify_customer(state, body.customer_token)
    token, token_hash = new_token()
    conversation_id = await state.assistant.store.call(
        lambda: state.assistant.new_conversation(
            token_hash=token_hash, customer=customer, channel="web"
        )
    )
    return Created(id=conversation_id, token=token, customer_id=customer.id if customer else None)


_MESSAGE_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": MessageIn.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "maxLength": MAX_TEXT_CHARS},
                    "image": {
                        "type": "string",
                        "format": "binary",
                        "description": f"≤ {MAX_UPLOAD_BYTES // (1024 * 1024)} MB",
                    },
                    "image_url": {"type": "string"},
                },
            }
        },
    },
}
_SSE_RESPONSE = {
    200: {
        "description": (
            "Server-sent events: text {delta}, tool_call {id, name, arguments}, tool_progress "
            "{id, text}, tool_result {id, name, content}, restart {} (drop the partial text), "
            "done {message_id, usage}, error {message}."
        ),
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.post(
    "/{conversation_id}/messages",
    openapi_extra={"requestBody": _MESSAGE_BODY},
    responses=_SSE_RESPONSE,  # type: ignore[arg-type]
    response_class=EventStream,
)
async def send_message(
    conversation_id: ConversationId, request: Request, state: State
) -> EventStream:
    """Send the customer's message; the answer streams back as it is generated.

    The turn finishes and is stored even if the client goes away mid-stream.
    """
    caller, _ = await authorise_conversation(state, request, conversation_id)
    if caller.admin:
        raise ApiError(
            403, "Agents can read conversations but not write in them. Use the customer's token."
        )
    enforce(state.per_conversation, conversation_id, "messages in this conversation")
    incoming = await read_message(request)
    reference = None
    if incoming.upload is not None:
        upload = incoming.upload
        record = await state.assistant.store.call(
            lambda: state.assistant.store.images.add(
                upload.data, upload.mime, f"upload:{upload.filename}", conversation_id
            )
        )
        reference = record.reference
    message = UserMessage(content=incoming.content(reference))
    try:
        turn = await start_turn(state.assistant, conversation_id, message)
    except TurnRefused as refused:  # not stored: the client sends it again
        retry = None if refused.reason == "gone" else _RETRY_SOON  # gone stays gone
        raise ApiError(_REFUSED_STATUS[refused.reason], refused.message, retry) from refused
    return EventStream(turn, headers=SSE_HEADERS)


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: NonBlankText = Field(
        max_length=MAX_TEXT_CHARS, description="What the agent says to the customer."
    )


class ReplyOut(BaseModel):
    message_id: int


class ConversationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["active", "waiting_for_agent"]
    """``active`` hands the conversation back to the assistant; ``waiting_for_agent`` takes
    it over (the assistant stops answering)."""


class ConversationStatus(BaseModel):
    id: str
    status: str


async def _agent_only(state: ServerState, request: Request, conversation_id: str) -> str:
    """The acting agent's name (``operator`` for the admin key); 403 for a customer."""
    caller, _ = await authorise_conversation(state, request, conversation_id, fresh=True)
    if not caller.admin:
        raise ApiError(403, "Only the support team (an agent's key or the admin key) can do this.")
    return await desk_agent(request)


async def _at_desk(action: Callable[..., T], *args: Any, state: ServerState) -> T:
    """Run a desk action; its refusal is the API's error."""
    try:
        return await state.assistant.store.call(action, *args)
    except DeskError as exc:
        raise refused(exc) from exc


@router.post("/{conversation_id}/replies", status_code=201, response_model=ReplyOut)
async def reply_as_agent(
    conversation_id: ConversationId, reply: ReplyIn, request: Request, state: State
) -> ReplyOut:
    """A person from the support team replies to the customer (an agent's key or the admin
    key). The conversation stays with the team, and the assistant quiet, until it is handed
    back."""
    agent = await _agent_only(state, request, conversation_id)
    desk = desk_of(state)
    message_id = await _at_desk(desk.reply, agent, conversation_id, reply.text, state=state)
    return ReplyOut(message_id=message_id)


@router.patch("/{conversation_id}", response_model=ConversationStatus)
async def set_conversation_status(
    conversation_id: ConversationId, patch: ConversationPatch, request: Request, state: State
) -> ConversationStatus:
    """Take a conversation over from the assistant, or hand it back (an agent's key or the
    admin key)."""
    agent = await _agent_only(state, request, conversation_id)
    desk = desk_of(state)
    await _at_desk(desk.set_conversation_status, agent, conversation_id, patch.status, state=state)
    return ConversationStatus(id=conversation_id, status=patch.status)


@router.delete("/{conversation_id}", status_code=204, response_class=Response)
async def delete_conversation(
    conversation_id: ConversationId, request: Request, state: State
) -> Response:
    """Delete a conversation at the customer's request (admin key): its messages, images and
    receipts; tickets filed from it stay, without the customer's name and words."""
    agent = await _agent_only(state, request, conversation_id)
    store = state.assistant.store
    messages = await store.call(store.conversations.messages, conversation_id)
    await _at_desk(desk_of(state).delete_conversation, agent, conversation_id, state=state)
    await forget_conversation_responses(state.assistant.model, messages)
    state.known.forget(conversation_id)  # other workers find out at the customer's next message
    return Response(status_code=204)


@router.get("/{conversation_id}", response_model=ConversationOut)
async def get_conversation(
    conversation_id: ConversationId, request: Request, state: State
) -> ConversationOut:
    """The conversation so far (for its customer token or the admin key)."""
    caller, info = await authorise_conversation(state, request, conversation_id, fresh=True)
    messages = await state.assistant.store.call(
        state.assistant.store.conversations.messages, conversation_id
    )
    return ConversationOut(
        id=info.id,
        status=info.status,
        messages=visible(messages, caller),
        customer_id=info.customer_id,
    )


def visible(messages: list[dict[str, Any]], caller: Caller) -> list[dict[str, Any]]:
    """What ``caller`` may see: customers see neither the system prompt nor the provider's
    bookkeeping (response ids, sealed reasoning)."""
    if caller.admin:
        return messages
    return [
        {key: value for key, value in m.items() if key not in PROVIDER_KEYS}
        for m in messages
        if m.get("role") != "system"
    ]


@router.get(
    "/{conversation_id}/images/{image_id}",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}, "description": "The image, as stored."}},
)
async def get_image(
    conversation_id: ConversationId,
    image_id: Annotated[str, Path(pattern=_ID_SHAPE, description="The image's id.")],
    request: Request,
    state: State,
) -> Response:
    """An image shared in this conversation (``image://ID`` in a message), for the page to show."""
    await authorise_conversation(state, request, conversation_id)
    record = await state.assistant.store.call(state.assistant.store.images.get, image_id)
    if record is None or record.conversation_id != conversation_id:
        raise ApiError(404, "This conversation has no image with that id.")
    return Response(
        record.data,
        media_type=record.mime,
        headers={
            "Cache-Control": "private, max-age=86400",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )
