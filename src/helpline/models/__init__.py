"""Chat-model backends behind one protocol (see ``base``)."""

from helpline.models.base import (
    ChatModel,
    Finish,
    ModelError,
    ModelEvent,
    ResponseFormat,
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
    "StreamRestart",
    "TextDelta",
    "ToolCallReady",
    "Usage",
]
