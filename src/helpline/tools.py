"""Typed tools: plain Python functions whose JSON schema comes from their signature.

``@tool`` turns a function (sync or async) into a :class:`Tool`. Arguments the model
sends are validated with Pydantic before the call; a validation error, malformed JSON,
an unknown tool name or an exception raised by the tool becomes an error text the
model can read and correct — never a crash of the turn.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, get_type_hints

import anyio.to_thread
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from helpline.messages import ToolCall
from helpline.validation import describe_errors

if TYPE_CHECKING:
    from helpline.models.base import ChatModel
    from helpline.store import Store, VerifiedCustomer

_log = logging.getLogger(__name__)

MAX_CALL_ID_LENGTH = 128
"""Tool-call ids are stored with what a call filed; a longer one is kept as its digest."""

INTERNAL_FAILURE = "the tool failed for an internal reason; tell the customer and offer a ticket."
"""What the model reads when a tool breaks: never the exception, which may hold data."""


def _ignore_progress(_text: str) -> None:
    return None


@dataclass(frozen=True)
class ToolContext:
    """What a tool may need besides its arguments; declare a parameter of this type to get it."""

    conversation_id: str
    tool_call_id: str
    store: Store
    vision_model: ChatModel | None = None
    """The model that reads images; ``None`` means read them offline."""
    local_files_allowed: bool = False
    """True in the terminal, where the customer may name an image file on their own machine."""
    progress: Callable[[str], None] = _ignore_progress
    """Tell the customer what a slow tool is doing (callable from any thread)."""

    @functools.cached_property
    def customer(self) -> VerifiedCustomer | None:
        """The customer the business signed in, whom this conversation belongs to; ``None``
        for an anonymous visitor (read from the store when a tool first asks)."""
        return self.store.customers.of_conversation(self.conversation_id)


class ToolError(Exception):
    """Raise from a tool to tell the model (and so the customer) what went wrong and what to do."""


_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$", re.MULTILINE)
_ARG_LINE = re.compile(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and per-argument texts."""
    doc = inspect.cleandoc(doc)
    match = _ARGS_HEADER.search(doc)
    if not match:
        return doc.strip(), {}
    described: dict[str, str] = {}
    for line in doc[match.end() :].strip("\n").splitlines():
        arg = _ARG_LINE.match(line)
        if arg:
            described[arg.group(1)] = arg.group(2).strip()
        elif not line.strip():
            break
    return doc[: match.start()].strip(), described


def _strip_titles(schema: Any) -> Any:
    """Pydantic adds ``title`` everywhere; models don't need it and it costs tokens."""
    if isinstance(schema, dict):
        return {
            k: _strip_titles(v)
            for k, v in schema.items()
            if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


class Tool:
    """A function the model can call, with its validated argument model and JSON schema."""

    def __init__(
        self,
        function: Callable[..., Any],
        name: str | None = None,
        description: str | None = None,
        *,
        activity: str | None = None,
        done: str | None = None,
    ) -> None:
        self.function = function
        self.name = name or function.__name__
        self.activity = activity or "Working on it"
        """What the customer is shown while the tool runs, e.g. "Creating a ticket"."""
        self.done = done or "Done"
        """What the customer is shown once it has run, e.g. "Ticket created"."""
        doc_description, arg_docs = _parse_docstring(function.__doc__ or "")
        self.description = description or doc_description
        self._context_param: str | None = None
        hints = get_type_hints(function, include_extras=True)
        fields: dict[str, Any] = {}
        for param in inspect.signature(function).parameters.values():
            annotation = hints.get(param.name, Any)
            if annotation is ToolContext:
                self._context_param = param.name
                continue
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, Field(default, description=arg_docs.get(param.name)))
        self.arguments_model: type[BaseModel] = create_model(
            f"{self.name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
        self.is_async = inspect.iscoroutinefunction(function)

    @functools.cached_property
    def _schema(self) -> dict[str, Any]:
        parameters = _strip_titles(self.arguments_model.model_json_schema())
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }

    def schema(self) -> dict[str, Any]:
        """The tool as the OpenAI ``tools`` array expects it (built once; don't mutate it)."""
        return self._schema

    async def __call__(self, arguments: str, context: ToolContext) -> str:
        """Validate ``arguments`` (JSON text), run the tool, and return its result as text.

        Raises ``ValueError`` (malformed JSON), ``ValidationError`` or whatever the tool raises.
        """
        raw = json.loads(arguments or "{}")
        if not isinstance(raw, dict):
            raise ToolError(f"the arguments for {self.name} must be a JSON object; send one.")
        validated = self.arguments_model.model_validate(raw)
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        if self._context_param:
            kwargs[self._context_param] = context
        if self.is_async:
            result = await self.function(**kwargs)
        else:
            result = await anyio.to_thread.run_sync(lambda: self.function(**kwargs))
        if isinstance(result, str):
            return result
        return pydantic_core.to_json(result).decode()


def tool(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    activity: str | None = None,
    done: str | None = None,
) -> Any:
    """Make a typed function callable by the model: ``@tool`` or ``@tool(activity=...)``.

    ``activity`` and ``done`` are what customers see while it runs and after, in the terminal
    and on the chat page (e.g. "Creating a ticket", "Ticket created").
    """

    def make(f: Callable[..., Any]) -> Tool:
        return Tool(f, name=name, description=description, activity=activity, done=done)

    return make if function is None else make(function)


ERROR_PREFIX = "Error: "


def error_result(problem: str) -> str:
    """A failed call's result, as the model (and every surface) recognises it."""
    return ERROR_PREFIX + problem


def is_error_result(result: str) -> bool:
    return result.lstrip().startswith(ERROR_PREFIX)


def storable_call_id(call_id: str) -> str:
    """The call id as stored: as sent when short and printable, else a fixed-length digest."""
    if len(call_id) <= MAX_CALL_ID_LENGTH and call_id.isprintable():
        return call_id
    return "sha256:" + hashlib.sha256(call_id.encode("utf-8", "surrogatepass")).hexdigest()


class Toolset:
    """The tools offered to the model, by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, t: Tool | Callable[..., Any]) -> Tool:
        """Register a tool (a plain function is wrapped with ``@tool``)."""
        wrapped = t if isinstance(t, Tool) else Tool(t)
        self._tools[wrapped.name] = wrapped
        return wrapped

    def __iter__(self) -> Any:
        return iter(self._tools.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self._tools.values()]

    async def call(self, call: ToolCall, context: ToolContext) -> str:
        """Run one call; any failure comes back as an ``Error: …`` text for the model."""
        name = call.function.name
        selected = self._tools.get(name)
        if selected is None:
            available = ", ".join(self._tools) or "none"
            return error_result(f"there is no tool named {name!r}. Available tools: {available}.")
        stored_id = storable_call_id(context.tool_call_id)
        if stored_id != context.tool_call_id:
            context = replace(context, tool_call_id=stored_id)
        try:
            return await selected(call.function.arguments, context)
        except json.JSONDecodeError as exc:
            problem = (
                f"the arguments for {name} are not valid JSON ({exc.msg}). Send a JSON object."
            )
        except ValidationError as exc:
            problem = (
                f"invalid arguments for {name}: {describe_errors(exc.errors(), whole='arguments')}."
            )
        except ToolError as exc:
            problem = str(exc)
        except Exception:  # a tool's bug must not end the conversation, nor reach the customer
            _log.exception(
                "Tool %s failed in conversation %s (call %s)",
                name,
                context.conversation_id,
                context.tool_call_id,
            )
            problem = INTERNAL_FAILURE
        return error_result(problem)
