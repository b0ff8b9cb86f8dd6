"""Chat-model backends behind one protocol (see ``base``)."""

from helpline.models.base import (
    ChatModel,
    Finish,
    ModelError,
    ModelEvent,
    ResponseFormat,
    ResponseRef,
    StreamRestart,
    TextDelta,
    ToolCallReady,
    Usage,
)

__all__ = [
    "ChatModel",
    "Finish",
    "ModelError",
    "ModelEvent",
    "ResponseFormat",
    "ResponseRef",
    "StreamRestart",
    "TextDelta",
    "ToolCallReady",
    "Usage",
]
