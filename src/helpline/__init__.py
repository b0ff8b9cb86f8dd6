"""Helpline: a customer-support chat assistant on Grok, any OpenAI-compatible model, or offline.

The public surface is small::

    from helpline import Assistant, Store, ScriptedModel, tool
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from helpline.assistant import Assistant
    from helpline.config import Settings
    from helpline.models.scripted import ScriptedModel
    from helpline.store import Store
    from helpline.tools import Tool, ToolContext, ToolError, tool

__all__ = [
    "Assistant",
    "ScriptedModel",
    "Settings",
    "Store",
    "Tool",
    "ToolContext",
    "ToolError",
    "tool",
]

_HOMES = {
    "Assistant": "helpline.assistant",
    "ScriptedModel": "helpline.models.scripted",
    "Settings": "helpline.config",
    "Store": "helpline.store",
    "Tool": "helpline.tools",
    "ToolContext": "helpline.tools",
    "ToolError": "helpline.tools",
    "tool": "helpline.tools",
}


def __getattr__(name: str) -> Any:
    """Import public names on first use, so the command line starts fast."""
    if name not in _HOMES:
        raise AttributeError(f"module 'helpline' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
