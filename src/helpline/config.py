"""Configuration from environment variables and a ``.env`` file; choice of backend."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from helpline.models.base import ChatModel

XAI_BASE_URL = "https://api.x.ai/v1"
XAI_DEFAULT_MODEL = "grok-4"
XAI_DEFAULT_VISION_MODEL = "grok-4"

BackendKind = Literal["xai", "openai-compatible", "gguf", "offline"]
ApiStyle = Literal["responses", "chat"]
API_STYLES: tuple[ApiStyle, ...] = ("responses", "chat")


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class ConfigError(ValueError):
    """A setting's value cannot be used; the message names it and says what to set."""


@dataclass(frozen=True)
class Settings:
    """Everything an operator can configure. Command-line flags override the environment."""

    xai_api_key: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    vision_model: str | None = None
    database_url: str | None = None
    admin_key: str | None = None
    gguf: str | None = None
    profile: str | None = None
    max_output_tokens: int | None = None
    """The most tokens one model answer may use (``max_tokens``); unset: the backend's default."""
    identity_secret: str | None = None
    """Verifies HS256 customer tokens the business's backend signs; unset: none accepted."""
    identity_jwks_url: str | None = None
    """The business's JSON Web Key Set, to verify RS256 customer tokens; unset: none accepted."""
    allowed_origins: str | None = None
    """Comma-separated sites allowed to call the API from a browser (the widget); unset: none."""
    redis_url: str | None = None
    """Redis shared by every worker and machine: rate limits (and live updates on SQLite)."""
    redis_prefix: str | None = None
    """Prefix of Helpline's Redis keys and channels, so installations can share one Redis."""
    rate_limits: str | None = None
    """``client=120:4,conversation=6:0.25,auth=10:0.1`` (burst:per second); unset: those."""
    forwarded_allow_ips: str | None = None
    """Proxies whose ``X-Forwarded-For`` names the client; unset: loopback only."""
    api_style: ApiStyle | None = None
    """``responses`` or ``chat`` (completions); unset: Responses for xAI, chat for others."""
    xai_store: bool = True
    """Whether the provider stores responses (Responses API), so turns can continue them."""
    prices_file: str | None = None
    """A TOML file of model prices that overrides or adds to the shipped price table."""
    context_tokens: int | None = None
    """The model's context window in tokens; unset: the model table's, or 32,768."""

    def __post_init__(self) -> None:
        if self.rate_limits is not None:  # a bad value fails at start-up, saying what to write
            from helpline.limits import parse_rate_limits

            parse_rate_limits(self.rate_limits)
        if self.redis_url is not None and not self.redis_url.startswith(_REDIS_SCHEMES):
            raise ConfigError(
                f"HELPLINE_REDIS_URL (--redis-url) is {self.redis_url!r}; write it as a URL, "
                "such as redis://127.0.0.1:6379/0 (rediss:// for TLS, unix:///path/redis.sock)."
            )

    @classmethod
    def from_env(cls, env_file: Path | None = Path(".env")) -> Settings:
        """Read ``HELPLINE_*`` and ``XAI_API_KEY``; a ``.env`` file fills what is unset."""
        from_file: dict[str, str | None] = {}
        if env_file is not None and env_file.is_file():
            from dotenv import dotenv_values

            from_file = dotenv_values(env_file)  # read only: the process environment is kept

        def get(name: str) -> str | None:
            return os.environ.get(name) or from_file.get(name) or None

        return cls(
            xai_api_key=get("XAI_API_KEY"),
            base_url=get("HELPLINE_BASE_URL"),
            api_key=get("HELPLINE_API_KEY"),
            model=get("HELPLINE_MODEL"),
            vision_model=get("HELPLINE_VISION_MODEL"),
            database_url=get("HELPLINE_DATABASE_URL"),
            admin_key=get("HELPLINE_ADMIN_KEY"),
            gguf=get("HELPLINE_GGUF"),
            profile=get("HELPLINE_PROFILE"),
            max_output_tokens=_positive_int("HELPLINE_MAX_OUTPUT_TOKENS", get),
            api_style=_api_style(get),
            xai_store=_flag("HELPLINE_XAI_STORE", get, default=True),
            identity_secret=get("HELPLINE_IDENTITY_SECRET"),
            identity_jwks_url=get("HELPLINE_IDENTITY_JWKS_URL"),
            allowed_origins=get("HELPLINE_ALLOWED_ORIGINS"),
            redis_url=get("HELPLINE_REDIS_URL"),
            redis_prefix=get("HELPLINE_REDIS_PREFIX"),
            rate_limits=get("HELPLINE_RATE_LIMITS"),
            forwarded_allow_ips=get("HELPLINE_FORWARDED_ALLOW_IPS"),
            prices_file=get("HELPLINE_PRICES"),
            context_tokens=_positive_int("HELPLINE_CONTEXT_TOKENS", get),
        )

    def origins(self) -> list[str]:
        """The sites in ``allowed_origins``, as browsers send them (no trailing slash)."""
        return [o.strip().rstrip("/") for o in (self.allowed_origins or "").split(",") if o.strip()]

    def override(self, **values: str | None) -> Settings:
        """A copy with the given non-empty values replaced (for command-line flags)."""
        changes: dict[str, Any] = {k: v for k, v in values.items() if v}
        return replace(self, **changes)

    @property
    def backend(self) -> BackendKind:
        """Which backend these settings select: a base URL wins, then a GGUF file, then xAI."""
        if self.base_url:
            return "openai-compatible"
        if self.gguf:
            return "gguf"
        if self.xai_api_key:
            return "xai"
        return "offline"

    def endpoint(self) -> tuple[str, str | None, str]:
        """``(base_url, api_key, model)`` for the HTTP backends."""
        if self.base_url:
            return self.base_url, self.api_key, self.model or "default"
        return XAI_BASE_URL, self.xai_api_key, self.model or XAI_DEFAULT_MODEL

    def build_model(self, *, local_files_allowed: bool = False) -> ChatModel:
        """The chat model these settings select (the offline assistant when nothing is set).

        ``local_files_allowed``: the customer is at this machine's terminal, so the offline
        assistant may take a typed file path for a shared image.
        """
        if self.backend == "offline":
            from helpline.models.offline import OfflineModel

            return OfflineModel(local_files_allowed=local_files_allowed, profile=self.profile)
        if self.backend == "gguf":
            from helpline.models.local_gguf import LocalGGUFModel

            return LocalGGUFModel(self.gguf or "")

        base_url, api_key, model = self.endpoint()
        return self._http_model(base_url, model, api_key)

    def build_vision_model(self) -> ChatModel | None:
        """The model that reads images, or ``None`` to read receipts offline with OCR."""
        if self.backend not in ("xai", "openai-compatible"):
            return None
        if self.backend == "openai-compatible" and not self.vision_model:
            return None  # an arbitrary endpoint may not see images; OCR is the safe default

        base_url, api_key, _ = self.endpoint()
        vision_model = self.vision_model or XAI_DEFAULT_VISION_MODEL
        # A receipt is read in one request: nothing to continue, so nothing is stored.
        return self._http_model(base_url, vision_model, api_key, store=False)

    @property
    def chosen_api_style(self) -> ApiStyle:
        """The API the HTTP backends speak: as set, else Responses for xAI, chat for others."""
        if self.api_style:
            return self.api_style
        return "chat" if self.base_url else "responses"

    def _http_model(
        self, base_url: str, model: str, api_key: str | None, *, store: bool = True
    ) -> ChatModel:
        if self.chosen_api_style == "chat":
            from helpline.models.openai_compat import OpenAICompatModel

            return OpenAICompatModel(base_url, model, api_key, **self._output_limit())
        from helpline.models.openai_responses import ResponsesModel

        return ResponsesModel(
            base_url, model, api_key, store=store and self.xai_store, **self._output_limit()
        )

    def _output_limit(self) -> dict[str, int]:
        return {"max_output_tokens": self.max_output_tokens} if self.max_output_tokens else {}


def _positive_int(name: str, get: Callable[[str], str | None]) -> int | None:
    """A whole number above zero from the environment, or ``None`` when unset."""
    value = get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(
            f"{name} is {value!r}; set it to a whole number of tokens above 0, such as 4096, "
            "or leave it unset for the default."
        )
    return number


def _api_style(get: Callable[[str], str | None]) -> ApiStyle | None:
    """``HELPLINE_API_STYLE``: ``responses``, ``chat``, or ``None`` when unset."""
    value = get("HELPLINE_API_STYLE")
    if value is None:
        return None
    for style in API_STYLES:
        if value.strip().lower() == style:
            return style
    raise ConfigError(
        f"HELPLINE_API_STYLE is {value!r}; set it to responses (the Responses API) or chat "
        "(chat completions), or leave it unset: Responses for xAI, chat for other servers."
    )


def _flag(name: str, get: Callable[[str], str | None], *, default: bool) -> bool:
    """A true/false setting from the environment (``true``/``false``, ``1``/``0``, ``yes``/``no``)."""
    value = get(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} is {value!r}; set it to true or false, or leave it unset.")
