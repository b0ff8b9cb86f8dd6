"""The company profile: who the assistant answers for, its prompt, help centre and policies.

A profile is a folder, so a business can run Helpline as itself without code::

    my-company/
      profile.toml      company name, support hours, refund window, currency, enabled tools
      prompt.md         the system prompt
      articles/*.md     help-centre articles, each starting with a "# Title" line
      intents.toml      what customers say, by intent (the offline assistant's understanding)
      replies.toml      what the offline assistant says, and where each intent leads

``prompt.md`` and the articles may use ``$company``, ``$support_hours``, ``$support_email``,
``$refund_window_days`` and ``$currency``; they are filled in from ``profile.toml`` so
policy numbers are written once.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from string import Template
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from helpline.support.hours import SupportHours
from helpline.validation import describe_errors

DEFAULT_PROFILE = Path(__file__).resolve().parent.parent / "profiles" / "default"


class ProfileError(ValueError):
    """The profile folder is missing a file or has an invalid setting."""


@dataclass(frozen=True)
class Article:
    """A help-centre article: ``id`` is its file name without ``.md``."""

    id: str
    title: str
    body: str
    """The Markdown after the title line, placeholders filled in."""


@dataclass(frozen=True)
class Settings:
    """Policy settings that tools enforce in code."""

    refund_window_days: int = 14
    """Refunds are possible for this many days after delivery."""
    currency: str = "EUR"
    support_hours: str | None = None
    """When human agents work, e.g. "every day from 08:00 to 23:00 (CET)"."""
    support_email: str | None = None
    tickets_per_conversation: int = 5
    """The most tickets one conversation may file (a runaway model files no more)."""
    order_lookups_per_conversation: int = 20
    failed_order_lookups_per_conversation: int = 5
    """Look-ups that found nothing: a conversation cannot try address after address."""
    hours: SupportHours | None = None
    """When people answer (``[support]``); outside them a handoff says when they will."""
    offer_person_first: bool = False
    """The widget offers "talk to a person" before the assistant starts."""
    refund_approval_over: Decimal | None = None
    """Refunds above this amount (in ``currency``) wait for a person's approval."""
    refund_approval_when: tuple[str, ...] = ()
    """Refunds the rules allow only at the margin that wait for a person too:
    ``second_refund_on_order``, ``customer_not_verified``."""


@dataclass(frozen=True)
class WidgetLook:
    """The embedded widget's defaults (``[widget]``); the page's ``data-`` attributes win."""

    color: str = "#0f766e"
    position: str = "right"
    greeting: str | None = None
    strings: dict[str, str] = field(default_factory=dict)
    """Words the widget shows, by name (e.g. ``send``, ``placeholder``), in the site's language."""


@dataclass(frozen=True, eq=False)
class Profile:
    """A loaded profile; compared by identity so caches can key on it."""

    name: str
    system_prompt: str
    articles: tuple[Article, ...]
    settings: Settings
    tools: tuple[str, ...] | None
    """Names of the tools the assistant may use; ``None`` means every available tool."""
    path: Path
    widget: WidgetLook = WidgetLook()


class _Company(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    support_hours: str | None = None
    support_email: str | None = None


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refund_window_days: int = Field(default=14, ge=0)
    currency: str = Field(default="EUR", pattern="^[A-Z]{3}$")
    tickets_per_conversation: int = Field(default=Settings.tickets_per_conversation, ge=1)
    order_lookups_per_conversation: int = Field(
        default=Settings.order_lookups_per_conversation, ge=1
    )
    failed_order_lookups_per_conversation: int = Field(
        default=Settings.failed_order_lookups_per_conversation, ge=1
    )
    refund_approval_over: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    refund_approval_when: list[Literal["second_refund_on_order", "customer_not_verified"]] = []


class _Support(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str = "UTC"
    hours: str | dict[str, str] | None = None
    offer_person_first: bool = False


class _Widget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    color: str = Field(default=WidgetLook.color, pattern=r"^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$")
    position: Literal["left", "right"] = "right"
    greeting: str | None = Field(default=None, max_length=300)
    strings: dict[str, Annotated[str, Field(max_length=300)]] = {}


class _Tools(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: list[str] | None = None


class _ProfileFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    company: _Company
    policy: _Policy = _Policy()
    tools: _Tools = _Tools()
    support: _Support = _Support()
    widget: _Widget = _Widget()


def _read_settings(folder: Path) -> _ProfileFile:
    config = folder / "profile.toml"
    if not config.is_file():
        raise ProfileError(
            f"{config} is missing. A profile folder needs profile.toml, prompt.md and articles/; "
            f"copy {DEFAULT_PROFILE} to start one."
        )
    try:
        return _ProfileFile.model_validate(tomllib.loads(config.read_text(encoding="utf-8")))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{config} is not valid TOML ({exc}); fix the syntax.") from exc
    except ValidationError as exc:
        problems = describe_errors(exc.errors(), whole="profile")
        raise ProfileError(f"{config} has invalid settings: {problems}.") from exc


def placeholder_values(company: str, settings: Settings) -> dict[str, str]:
    """What ``$company``, ``$support_hours`` … stand for in the profile's texts."""
    return {
        "company": company,
        "support_hours": settings.support_hours or "during our support hours",
        "support_email": settings.support_email or "our support email",
        "refund_window_days": str(settings.refund_window_days),
        "currency": settings.currency,
    }


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with ``$placeholders`` filled; unknown ones are left as written."""
    return Template(text).safe_substitute(values)


def _fill(path: Path, values: dict[str, str]) -> str:
    """The file's text with ``$placeholders`` filled; unknown ones are left as written."""
    return fill(path.read_text(encoding="utf-8"), values)


def _parse_article(path: Path, text: str) -> Article:
    first, _, body = text.lstrip().partition("\n")
    if not first.startswith("# "):
        raise ProfileError(
            f'{path} must start with a "# Title" line; add the article\'s title at the top.'
        )
    return Article(id=path.stem, title=first[2:].strip(), body=body.strip())


def load_profile(path: str | Path | None = None) -> Profile:
    """Load the profile in folder ``path`` (default: the built-in Dishdash profile).

    Raises :class:`ProfileError` naming the file and what to fix.
    """
    folder = Path(path).expanduser() if path is not None else DEFAULT_PROFILE
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise ProfileError(f"profile folder {folder} does not exist; check the path.")
    parsed = _read_settings(folder)
    settings = Settings(
        refund_window_days=parsed.policy.refund_window_days,
        currency=parsed.policy.currency,
        tickets_per_conversation=parsed.policy.tickets_per_conversation,
        order_lookups_per_conversation=parsed.policy.order_lookups_per_conversation,
        failed_order_lookups_per_conversation=parsed.policy.failed_order_lookups_per_conversation,
        refund_approval_over=parsed.policy.refund_approval_over,
        refund_approval_when=tuple(parsed.policy.refund_approval_when),
        support_hours=parsed.company.support_hours,
        support_email=parsed.company.support_email,
        hours=_support_hours(folder, parsed.support),
        offer_person_first=parsed.support.offer_person_first,
    )
    values = placeholder_values(parsed.company.name, settings)
    prompt_file = folder / "prompt.md"
    if not prompt_file.is_file():
        raise ProfileError(f"{prompt_file} is missing; write the system prompt there.")
    articles = tuple(
        _parse_article(p, _fill(p, values)) for p in sorted((folder / "articles").glob("*.md"))
    )
    return Profile(
        name=parsed.company.name,
        system_prompt=_fill(prompt_file, values).strip(),
        articles=articles,
        settings=settings,
        tools=tuple(parsed.tools.enabled) if parsed.tools.enabled is not None else None,
        path=folder,
        widget=WidgetLook(**parsed.widget.model_dump()),
    )


def _support_hours(folder: Path, support: _Support) -> SupportHours | None:
    if support.hours is None:
        return None
    try:
        return SupportHours.parse(support.hours, support.timezone)
    except ValueError as exc:
        raise ProfileError(f"{folder / 'profile.toml'} [support]: {exc}.") from exc
