"""What model replies cost, and how much each model reads at once: the model catalog.

The catalog ships in ``model_catalog.toml`` (current Grok and common OpenAI models): prices in
US dollars per million tokens (input, cached input, output, and the dearer rates some models
charge for very long prompts) and the context window. ``HELPLINE_PRICES`` names a TOML file
of the same shape that overrides or adds models.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from functools import cache
from pathlib import Path
from typing import Any

from helpline.config import ConfigError
from helpline.models.base import Usage

CATALOG_FILE = Path(__file__).with_name("model_catalog.toml")
_PER_TOKEN = 1 / 1_000_000


@dataclass(frozen=True)
class ModelPrices:
    """US dollars per million tokens; the ``long_*`` rates bill every token of a request
    whose prompt reaches ``long_context_from`` tokens."""

    input: float
    cached_input: float
    output: float
    long_context_from: int | None = None
    long_input: float | None = None
    long_cached_input: float | None = None
    long_output: float | None = None

    def cost_usd(self, usage: Usage) -> float:
        """The cost of one model request.

        Cached tokens are part of the prompt count (both API styles report them so). Output
        is billed for the completion and for reasoning: where a provider counts reasoning
        outside the completion, its total is larger than prompt plus completion.
        """
        prompt = usage.prompt_tokens
        cached = min(usage.cached_prompt_tokens, prompt)
        output = max(usage.completion_tokens, usage.total_tokens - prompt)
        rates = (self.input, self.cached_input, self.output)
        if self.long_context_from is not None and prompt >= self.long_context_from:
            rates = (
                _or(self.long_input, self.input),
                _or(self.long_cached_input, self.cached_input),
                _or(self.long_output, self.output),
            )
        cost = (prompt - cached) * rates[0] + cached * rates[1] + output * rates[2]
        return round(cost * _PER_TOKEN, 10)


@dataclass(frozen=True)
class CatalogModel:
    """One model: its prices (``None``: unknown) and context window (``None``: unknown)."""

    name: str
    prices: ModelPrices | None
    context_tokens: int | None


class ModelCatalog:
    """Models by name and alias; a dated or suffixed name finds the model it starts with."""

    def __init__(self, models: dict[str, CatalogModel], aliases: dict[str, str]) -> None:
        self._models = models
        self._names = {**{name: name for name in models}, **aliases}

    @classmethod
    def load(cls, overrides: str | Path | None = None) -> ModelCatalog:
        """The shipped catalog, with the models of the ``overrides`` TOML file (the value of
        ``HELPLINE_PRICES``) replacing or adding to it; raises :class:`ConfigError`."""
        raw = dict(_shipped())
        if overrides is not None:
            for name, values in _read_overrides(Path(overrides)).items():
                raw[name] = {**raw.get(name, {}), **values}
        where = f"HELPLINE_PRICES ({overrides})" if overrides else str(CATALOG_FILE)
        models: dict[str, CatalogModel] = {}
        aliases: dict[str, str] = {}
        for name, values in raw.items():
            models[name.lower()] = _model(name.lower(), values, where)
            for alias in values.get("aliases", []):
                aliases[str(alias).lower()] = name.lower()
        return cls(models, aliases)

    def find(self, model: str) -> CatalogModel | None:
        """The catalog's entry for ``model``, or ``None``."""
        wanted = model.lower().rsplit("/", 1)[-1]
        if wanted in self._names:
            return self._models[self._names[wanted]]
        starts = [name for name in self._names if wanted.startswith(name + "-")]
        return self._models[self._names[max(starts, key=len)]] if starts else None

    def cost_usd(self, model: str, usage: Usage) -> float | None:
        """What one request to ``model`` cost, or ``None`` when its prices are unknown."""
        entry = self.find(model)
        if entry is None or entry.prices is None:
            return None
        return entry.prices.cost_usd(usage)

    def context_tokens(self, model: str) -> int | None:
        entry = self.find(model)
        return entry.context_tokens if entry else None


def format_cost(cost_usd: float | None) -> str:
    """A cost for people: ``$0.0042``, ``$1.25``; ``cost unknown`` without a price."""
    if cost_usd is None:
        return "cost unknown"
    return f"${cost_usd:,.2f}" if cost_usd >= 1 else f"${cost_usd:.4f}"


@cache
def _shipped() -> dict[str, dict[str, Any]]:
    return tomllib.loads(CATALOG_FILE.read_text(encoding="utf-8"))


def _read_overrides(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"HELPLINE_PRICES names {str(path)!r}, which cannot be read ({exc.strerror}). "
            "Point it at a TOML file of model prices, or leave it unset for the shipped ones."
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"HELPLINE_PRICES ({path}) is not valid TOML: {exc}.") from exc
    for name, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(
                f'HELPLINE_PRICES ({path}): {name!r} must be a table, such as ["{name}"] '
                "followed by input = 1.25, cached_input = 0.20, output = 2.50."
            )
    return data


_PRICE_KEYS = frozenset(f.name for f in fields(ModelPrices))
_KNOWN_KEYS = _PRICE_KEYS | {"aliases", "context_tokens"}


def _model(name: str, values: dict[str, Any], where: str) -> CatalogModel:
    unknown = sorted(set(values) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: model {name!r} has unknown keys {', '.join(unknown)}; use "
            f"{', '.join(sorted(_KNOWN_KEYS))}."
        )
    aliases = values.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ConfigError(f"{where}: model {name!r} has aliases that are not a list of names.")
    for key in (*_PRICE_KEYS, "context_tokens"):
        value = values.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ):
            raise ConfigError(
                f"{where}: model {name!r} has {key} = {value!r}; it must be a number of at "
                "least 0 (US dollars per million tokens, or tokens)."
            )
    context = values.get("context_tokens")
    if "input" not in values and "output" not in values:
        return CatalogModel(name, None, int(context) if context else None)
    if "input" not in values or "output" not in values:
        raise ConfigError(
            f"{where}: model {name!r} needs both input and output prices "
            "(US dollars per million tokens); cached_input defaults to input."
        )
    prices = ModelPrices(
        input=float(values["input"]),
        cached_input=float(values.get("cached_input", values["input"])),
        output=float(values["output"]),
    )
    long_from = values.get("long_context_from")
    if long_from is not None:
        prices = replace(
            prices,
            long_context_from=int(long_from),
            long_input=_float_or_none(values.get("long_input")),
            long_cached_input=_float_or_none(values.get("long_cached_input")),
            long_output=_float_or_none(values.get("long_output")),
        )
    return CatalogModel(name, prices, int(context) if context else None)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
