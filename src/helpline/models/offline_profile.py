"""The business as the offline assistant knows it: the profile's ``replies.toml``.

It holds every reply template, the problems customers report (label, words, how to
acknowledge them), the order-number format and the words that ask about an order, the
words that make a line a help-centre question, how vague problems are met, and where each
intent of ``intents.toml`` leads. A profile without the file, or a file that leaves a text
out, uses the built-in profile's. Read once per profile folder.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from helpline.support.knowledge import HelpCenter
    from helpline.support.profile import Profile
    from helpline.understanding.intents import IntentSpec

LEADS_TO = frozenset(
    {"article", "order", "refund", "human", "problem", "reply", "greeting", "thanks", "goodbye"}
    | {"none"}
)
GENERIC_PROBLEM = "Problem"
NEVER = r"(?!x)x"
"""A regular expression that matches nothing (a pattern the profile leaves out)."""


class RepliesError(ValueError):
    """The profile's replies.toml is malformed; the message says where and how to fix it."""


@dataclass(frozen=True)
class Behaviour:
    """Where an intent leads, and how a clarifying question names it (``topic``)."""

    leads_to: str
    article: str | None = None
    label: str | None = None
    reply: str | None = None
    topic: str | None = None
    query: str | None = None
    """The help-centre search that finds ``article`` (default: the article's name in words)."""


@dataclass(frozen=True)
class ProblemKind:
    """A problem customers report: the ticket's label, the words that say it, the reply's first words."""

    label: str
    pattern: re.Pattern[str]
    acknowledgement: str
    refundable: bool = True
    """A refund could settle it (not so for a login or app problem)."""


def _pattern(text: str, where: str) -> re.Pattern[str]:
    """A regular expression written over several lines (line breaks and their indent dropped)."""
    try:
        return re.compile("".join(line.strip() for line in text.splitlines()))
    except re.error as error:
        raise RepliesError(
            f"{where} is not a valid regular expression ({error}); fix it."
        ) from error


class Playbook:
    """A profile's offline wording and rules, with its ``$placeholders`` filled in."""

    def __init__(self, data: dict[str, Any], values: dict[str, str], profile: Profile, path: Path):
        from helpline.support.profile import fill

        self.path = path
        self.currency = profile.settings.currency
        self.articles = profile.articles
        self._texts: dict[str, dict[str, str]] = {
            section: {key: fill(str(text), values) for key, text in body.items()}
            for section, body in data.items()
            if section in _TEXT_SECTIONS and isinstance(body, dict)
        }
        orders = data.get("orders", {})
        self.order_example = str(orders.get("number_example", ""))
        prefix = re.escape(str(orders.get("number_prefix", "")))
        self.order_number = re.compile(
            rf"(?i:{prefix})-?\d{{3,}}(?!\d)" if prefix else r"(?!x)x"  # never matches
        )
        self.order_from = fill(str(orders.get("from", "")), values)
        self.whole_order = _pattern(
            str(orders.get("whole", r"\b(?:whole|entire|everything|all of it)\b")),
            f"{path}: [orders] whole",
        )
        self.order_about = _pattern(str(orders.get("about", NEVER)), f"{path}: [orders] about")
        self.order_about_given = _pattern(
            str(orders.get("about_given", NEVER)), f"{path}: [orders] about_given"
        )
        understanding = data.get("understanding", {})
        self.clarify_margin = float(understanding.get("clarify_margin", 0.0))
        self.overrule = float(understanding.get("overrule", 0.0))
        self.passage_confidence = float(understanding.get("passage_confidence", 99.0))
        self.answer_vague_problems = bool(understanding.get("answer_vague_problems", False))
        self.vague_problem_query = str(understanding.get("vague_problem_query", "{topic}"))
        self.question_topics = _pattern(
            str(understanding.get("question_topics", NEVER)),
            f"{path}: [understanding] question_topics",
        )
        self.vocabulary = tuple(str(understanding.get("vocabulary", "")).split())
        self.query_hints = tuple(
            (_pattern(str(h["pattern"]), f"{path}: query hint {h['query']!r}"), str(h["query"]))
            for h in data.get("query_hints", [])
        )
        self._known = frozenset(self.vocabulary)
        own = [
            ProblemKind(
                str(p["label"]),
                _pattern(str(p["pattern"]), f"{path}: problem {p['label']!r}"),
                fill(str(p.get("acknowledgement", "")), values),
                bool(p.get("refundable", True)),
            )
            for p in data.get("problems", [])
        ]
        self.problems = (*own, ProblemKind(GENERIC_PROBLEM, _GENERIC_PROBLEM, ""))
        self.intents: dict[str, Behaviour] = {}
        for name, body in data.get("intents", {}).items():
            if body.get("leads_to") not in LEADS_TO:
                raise RepliesError(
                    f"{path}: intent {name!r} has leads_to={body.get('leads_to')!r}; "
                    f"use one of {sorted(LEADS_TO)}."
                )
            if body["leads_to"] == "article" and not body.get("article"):
                raise RepliesError(
                    f"{path}: intent {name!r} leads to an article; name it in article."
                )
            self.intents[name] = Behaviour(
                leads_to=body["leads_to"],
                article=body.get("article"),
                label=body.get("label"),
                reply=fill(body["reply"], values) if body.get("reply") else None,
                topic=body.get("topic"),
                query=body.get("query"),
            )

    def confident(self, query: str) -> bool:
        """Whether the help centre's best passage for ``query`` scores ``passage_confidence``."""
        found = self.help_center.search(query, k=1)
        return bool(found) and found[0].score >= self.passage_confidence

    @functools.cached_property
    def help_center(self) -> HelpCenter:
        from helpline.support.knowledge import HelpCenter

        return HelpCenter(self.articles)

    def text(self, section: str, key: str, **fields: Any) -> str:
        """The template ``[section] key`` with ``fields`` filled in ("" when it has none)."""
        template = self._texts.get(section, {}).get(key)
        if template is None:
            template = self._texts.get(section, {}).get("default", "")
        return template.format(**fields) if fields else template

    @property
    def known_words(self) -> frozenset[str]:
        """The business's own words (never taken for a customer's name)."""
        return self._known

    def behaviour(self, spec: IntentSpec) -> Behaviour:
        """Where ``spec`` leads: this file's entry, else what intents.toml says of it."""
        found = self.intents.get(spec.name)
        if found is not None:
            return found
        return Behaviour(
            leads_to=getattr(spec, "leads_to", None) or "none",
            article=getattr(spec, "article", None),
            label=getattr(spec, "label", None),
            reply=getattr(spec, "reply", None),
        )

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one Playbook per profile, kept for good
    def correct(self, word: str) -> str:
        """A misspelt word close to one of the vocabulary's, corrected; others as written."""
        if len(word) < 5 or word in self._known:
            return word
        close = difflib.get_close_matches(word, self.vocabulary, n=1, cutoff=0.84)
        return close[0] if close else word


_TEXT_SECTIONS = frozenset(
    {"replies", "questions", "prefaces", "no_tool", "results", "order_line", "follow_ups"}
    | {"errors", "labels"}
)
_GENERIC_PROBLEM = re.compile(
    r"\bproblem\b|\bissue\b|\bnot working\b|\b(?:doesn't|won't|isn't|does not|will not) work|"
    r"\b(?:doesn't|won't|does not|will not)(?: \w+){1,4} work\b|\bstopped working\b|\bbroken\b|\bcomplain|"
    r"\bterrible\b|\bawful\b|\bwent wrong\b"
)


def _merged(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``own`` over ``base``, table by table (lists, such as problems, are replaced whole)."""
    merged = dict(base)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = {**base[key], **value}
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RepliesError(f"{path} could not be read ({error}); fix the file.") from error


@functools.cache
def playbook_for(profile_folder: Path) -> Playbook:
    """The playbook of a profile folder (its replies.toml over the built-in one)."""
    from helpline.support.profile import DEFAULT_PROFILE, load_profile, placeholder_values

    profile = load_profile(profile_folder)
    data = _read(DEFAULT_PROFILE / "replies.toml")
    own = profile_folder / "replies.toml"
    if own.is_file() and own.resolve() != (DEFAULT_PROFILE / "replies.toml").resolve():
        mine = _read(own)
        data = _merged(data, mine)
        if "intents" in mine:  # a business's intents are its own, not merged with Dishdash's
            data["intents"] = mine["intents"]
    values = placeholder_values(profile.name, profile.settings)
    values["order_example"] = str(data.get("orders", {}).get("number_example", ""))
    return Playbook(data, values, profile, own)
