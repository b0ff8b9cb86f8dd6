"""Reading one customer message for the offline assistant: intents, problem kind, name, ids.

The language rules live here (greetings, names, contractions); the business's own words
(problem kinds, question topics, order-number format, the words that ask about an order,
vocabulary) come from the profile's playbook. Patterns run over a normalised copy of the
text (lower case, apostrophes restored, typos near the profile's words corrected), so that
"cant loggin", "Can't log in" and "can not login 😩" read the same. Names are read from the
original text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from helpline.models.offline_profile import GENERIC_PROBLEM, Behaviour, Playbook

if TYPE_CHECKING:
    from helpline.understanding.intents import IntentMatcher, IntentSpec, Match


class Intent(StrEnum):
    """What a customer's message is about."""

    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    CANCEL = "cancel"
    PROBLEM = "problem"
    REFUND = "refund"
    HUMAN = "human"
    ORDER = "order"
    POLICY = "policy"
    RECEIPT = "receipt"


class Asked(StrEnum):
    """What the assistant's last message asked the customer for."""

    NAME = "name"
    ORDER_ID = "order_id"
    DETAILS = "details"
    ITEMS = "items"


_INTENT_PATTERNS: tuple[tuple[Intent, str], ...] = (
    (
        Intent.GREETING,
        r"^(?:hi+|hello|hey+|hiya|howdy|yo|hallo|hola|heya|greetings|good (?:morning|afternoon|evening))\b",
    ),
    (
        Intent.THANKS,
        r"\b(?:thanks|thank you|thank u|thx|ty|cheers|appreciate it|much appreciated)\b",
    ),
    (
        Intent.GOODBYE,
        r"\b(?:bye|goodbye|good bye|see you|see ya|that's all|that is all|nothing else|"
        r"have a (?:good|nice|great) (?:day|one|evening))\b",
    ),
    (Intent.CANCEL, r"\b(?:never ?mind|forget it|cancel that|don't bother|no need)\b"),
    (
        Intent.REFUND,
        r"\brefund|\bmoney back\b|\breimburs|\bcompensat|\bchargeback\b",
    ),
    (
        Intent.HUMAN,
        r"\bhuman\b|\breal person\b|\b(?:live |support )?agent\b|\brepresentative\b|"
        r"\b(?:speak|talk|chat) (?:to|with) (?:a |an |your )?(?:person|someone|somebody|staff|people)\b|"
        r"\bmanager\b|\bsupervisor\b|\bescalate\b|\b(?:an |a |the )?operator\b",
    ),
)

_INFO_QUESTION = re.compile(
    r"^(?:how|what|what's|whats|when|where|which|who|do|does|is|are|can|could|may|will|should|"
    r"would|if)\b|\?\s*$"
)
# Words that make a question personal ("why can't I…", "my food is late"), not a how-to.
_INCIDENT = re.compile(
    r"\b(?:can't|won't|didn't|never|twice|missing|late|cold|wrong|crash\w*|charged|still|"
    r"my order|this order|stolen|hacked)\b"
)
_ORDER_ID = re.compile(
    r"\b([A-Za-z]{2,4}-\d{3,})\b|(?<=[a-z])([A-Z]{2,4}-\d{3,})\b|"
    r"\b(?i:order)\s*(?i:number|no\.?|id)?\s*#?\s*(\d{3,})\b"
)
# A number the customer refers to ("invoice #00108"): noticed, not taken for an order.
_REFERENCE = re.compile(r"#\s?(\d{3,})\b")

_CONTRACTIONS = {
    "cant": "can't",
    "cannot": "can't",
    "can not": "can't",
    "dont": "don't",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "wont": "won't",
    "isnt": "isn't",
    "hasnt": "hasn't",
    "havent": "haven't",
    "wasnt": "wasn't",
    "im": "i'm",
    "ive": "i've",
    "its": "it's",
    "whats": "what's",
    "wheres": "where's",
    "thats": "that's",
}
_CONTRACTION_RE = re.compile(
    r"\b(" + "|".join(sorted(_CONTRACTIONS, key=len, reverse=True)) + r")\b"
)


def _words(text: str) -> list[str]:
    """A word list written as one string (easier to read and extend)."""
    return text.split()


_WORD = re.compile(r"[a-z]+")


def _plain(text: str) -> str:
    """Lower case, straight apostrophes, restored contractions."""
    lowered = text.lower().replace("’", "'").replace("‘", "'")
    lowered = re.sub(r"\s+", " ", lowered).strip()
    lowered = _CONTRACTION_RE.sub(lambda m: _CONTRACTIONS[m.group(1)], lowered)
    return re.sub(r"\bloggin\b|\blogon\b", "login", lowered)


def normalise(text: str, book: Playbook) -> str:
    """The plain text with typos near the profile's words fixed."""
    return _WORD.sub(lambda m: book.correct(m.group(0)), _plain(text))


# Help-centre queries ---------------------------------------------------------------------

_FILLER = frozenset(
    _words(
        "how what when where why which who whom is are was were do does did can could would "
        "should will shall may might i i'm me my you your we our us it it's its the a an to of "
        "for on in at with about please there this that these be been have has had get got "
        "work works working usually normally take takes long much many any some tell know "
        "want need like just hi hello hey thanks so if or and but also really actually"
    )
)


# Words of a vague problem ("I have an issue", "it doesn't work") that say nothing of what.
_VAGUE = _FILLER | frozenset(
    _words(
        "problem problems issue issues not working work doesn't won't isn't does will broken "
        "complain complaint terrible awful went wrong something thing stuff help"
    )
)


def _says_what(norm: str) -> bool:
    """Whether a vague problem names what is wrong ("registration won't work")."""
    return any(w not in _VAGUE for w in re.findall(r"[\w'-]+", norm))


def topic_words(text: str) -> list[str]:
    """The line's content words as the customer wrote them ("the weather" → ["weather"])."""
    return [w for w in re.findall(r"[\w'-]+", text) if _plain(w).removesuffix("'s") not in _FILLER]


def search_query(text: str, book: Playbook) -> str:
    """A few words for a help-centre search: the question's gist, or its content words."""
    norm = normalise(text, book)
    for pattern, gist in book.query_hints:
        if pattern.search(norm):
            return gist
    kept = [w for w in re.findall(r"[\w'-]+", norm) if w not in _FILLER]
    return " ".join(kept) or text.strip()


# Names -----------------------------------------------------------------------------------

_NAME_WORD = r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*"
# A courtesy title before a name is not part of it: "Dr. Li Wei" is Li Wei.
_TITLE = r"(?:(?:mr|mrs|ms|miss|mx|dr|sir|madam)\.?\s+)?"
_NAME_RUN = rf"{_TITLE}({_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{0,4}})"
# What may follow a name given in answer: "Ahmed Khan, thanks", "it's Li btw".
_AFTER_NAME = r"(?:[\s,.!:;-]+(?:thanks|thank you|thx|cheers|please|btw|here))*\W*$"
_EXPLICIT_NAME = (
    re.compile(rf"(?:\b(?:my|the) |^\W*)name(?:'s|’s| is)\s+{_NAME_RUN}", re.I),
    re.compile(rf"\bname\s*[:=-]\s*{_NAME_RUN}", re.I),
    re.compile(rf"^\W*(?:my )?(?:first |full )?name\s+{_NAME_RUN}{_AFTER_NAME}", re.I),
    re.compile(rf"\b(?:you can |they )?call me\s+{_NAME_RUN}", re.I),
    re.compile(rf"\b(?:i'm|i’m|i am|im) called\s+{_NAME_RUN}", re.I),
    re.compile(rf"^\W*{_NAME_RUN}\s+is my name\b", re.I),
)
_WEAK_NAME = (
    re.compile(rf"\b(?:i'm|i’m|i am|im)\s+{_NAME_RUN}", re.I),
    re.compile(rf"\bthis is\s+{_NAME_RUN}", re.I),
    re.compile(rf"^\W*{_NAME_RUN}\s+here\b", re.I),
)
# Words that may come before a name given in answer: "sure thing, Emma", "ok fine its Dan".
_ANSWER_LEAD = (
    r"(?:(?:it's|it’s|its|it is|i'm|i’m|im|i am|me|sure thing|sure|yes|yeah|yep|ok|okay|fine|"
    r"thanks|thank you|my name\??)(?![^\W\d_])[\s,.!?:;-]*)*"
)
_ASKED_NAME = (
    re.compile(rf"^\W*{_ANSWER_LEAD}{_NAME_RUN}{_AFTER_NAME}", re.I),
    re.compile(rf"(?:^|[\s,.!?])(?:it's|it’s|its|it is)\s+{_NAME_RUN}{_AFTER_NAME}", re.I),
)
# Words that follow "I'm" / "this is" / start a short reply but are not names.
_NOT_NAMES = frozenset(
    _words(
        """
    a an the and or but so very really just also still not no yes yeah yep nope ok okay sure
    fine good great well bad sorry glad happy sad angry upset mad annoyed frustrated confused
    tired hungry starving thirsty sick ill pregnant allergic vegan vegetarian new here there back
    done finished ready unable able trying having getting looking waiting calling writing asking
    going gonna about from in at on with for to of by out up down over locked logged stuck lost
    charged stranded sure afraid worried concerned disappointed furious livid late early away
    home outside inside busy free interested curious wondering hoping reaching contacting
    following messaging texting using ordering paying still already always never trying
    this that these those it its it's it’s my your our their his her me you we they he she them us
    what who when where why how which hi hello hey thanks thank please help order orders food
    account app refund receipt problem issue customer user member driver courier manager human
    agent person someone somebody nobody everyone everything nothing something anything
    fine alright cool nice awesome perfect lol omg wow hmm um uh oh ah test testing sorry
    """
    )
)
_NAME_STOP = frozenset(
    _words(
        "and from but with here in at on i i'm im my me or so because since who living based "
        "calling writing again too as is btw thanks please"
    )
)


def _clean_name(run: str, *, strict: bool, known: frozenset[str]) -> str | None:
    """Cut a captured run of words at the first connector; reject words that aren't names.

    The result is a prefix of ``run`` (title-cased when written all lower case).
    """
    words: list[str] = []
    for word in run.split():
        if word.lower().replace("’", "'") in _NAME_STOP:
            break
        words.append(word)
    if not words:
        return None
    first = words[0].lower()
    if first in _NOT_NAMES or first in known:
        return None
    if strict and words[0].islower() and (first.endswith("ing") or first.endswith("ed")):
        return None
    # A later word that is no name ends it, unless written like one ("Nguyen Van An").
    name_case = words[0][:1].isupper()
    cut = [
        i
        for i, w in enumerate(words)
        if i and w.lower() in _NOT_NAMES and not (name_case and w[:1].isupper())
    ]
    words = words[: cut[0]] if cut else words
    return " ".join(w.title() if w.islower() or w.isupper() else w for w in words)


def _said(match: re.Match[str], name: str) -> tuple[int, int]:
    """Where the name was said: the whole match, or up to the name's last word if cut short."""
    if len(name.split()) == len(match.group(1).split()):
        return match.span()
    return match.start(), match.start(1) + len(
        " ".join(match.group(1).split()[: len(name.split())])
    )


def find_name(
    text: str, asked_name: bool, known: frozenset[str] = frozenset()
) -> tuple[str, tuple[int, int]] | None:
    """The customer's name and where it was said, if this message gives one.

    ``known`` are the business's words, never taken for a name ("order", "refund").
    """
    for pattern in _EXPLICIT_NAME:
        match = pattern.search(text)
        if match and (name := _clean_name(match.group(1), strict=False, known=known)):
            return name, _said(match, name)
    for pattern in _WEAK_NAME:
        for match in pattern.finditer(text):
            # "this is X" only when X is written like a name, or when we asked for one.
            capitalised = match.group(1)[:1].isupper()
            if pattern is _WEAK_NAME[1] and not (capitalised or asked_name):
                continue
            if name := _clean_name(match.group(1), strict=not asked_name, known=known):
                return name, _said(match, name)
    if asked_name:
        for pattern in _ASKED_NAME:
            match = pattern.search(text)
            if match and (name := _clean_name(match.group(1), strict=False, known=known)):
                return name, _said(match, name)
    return None


# The whole message ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """What one customer message says, as far as the offline assistant can tell."""

    text: str
    intents: frozenset[Intent]
    problems: tuple[str, ...]
    """Problem labels, e.g. ("Login problem",); empty when no problem is reported."""
    name: str | None
    order_ids: tuple[str, ...]
    emails: tuple[str, ...]
    image_refs: tuple[str, ...]
    words: str
    """The customer's own words minus greeting, name clause and image references."""
    described: bool = False
    """The message describes a problem (answers "what happened?", or says enough on its own)."""
    understood: str | None = None
    """The profile intent the line was matched to by meaning, if any."""
    query: str | None = None
    """The help-centre search the matched intent leads to (its article)."""
    reply: str | None = None
    """The profile's fixed reply for the matched intent."""
    references: tuple[str, ...] = ()
    """Other numbers the customer gave ("#00108"), kept with what they asked."""
    choices: tuple[str, str] | None = None
    """Two profile intents the line is equally close to: ask which one is meant."""
    reported: tuple[str, ...] = ()
    """The problem labels the words alone say, even where the meaning led elsewhere."""

    @property
    def actionable(self) -> bool:
        return bool(self.intents - {Intent.GREETING, Intent.THANKS, Intent.GOODBYE})


def asked_for(assistant_text: str) -> frozenset[Asked]:
    """What an assistant message asked the customer for (works for any model's wording)."""
    text = _plain(assistant_text)
    asked = set()
    if re.search(
        r"\byour (?:full )?name\b|\bwho (?:am i|i am) (?:speaking|talking|chatting)", text
    ):
        asked.add(Asked.NAME)
    if re.search(r"\border (?:number|id|no)\b", text):
        asked.add(Asked.ORDER_ID)
    if re.search(
        r"\bwhat (?:happened|went wrong|is wrong|'s wrong|seems to be)\b|\btell me more\b", text
    ):
        asked.add(Asked.DETAILS)
    if re.search(r"\b(?:which|what) items\b", text):
        asked.add(Asked.ITEMS)
    return frozenset(asked)


def find_order_ids(text: str, book: Playbook) -> tuple[str, ...]:
    """Order ids as written ("DD-10234" upper-cased, "order 10234" as the number).

    The profile's own format is read anywhere, glued to a word or without its dash
    ("orderDD-56501", "dd56501" → "DD-56501").
    """
    found: list[tuple[int, str]] = []
    for match in _ORDER_ID.finditer(text):
        glued = match.group(1) or match.group(2)
        found.append((match.start(), glued.upper() if glued else match.group(3)))
    for match in book.order_number.finditer(text):
        digits = match.group(0).lstrip("-").upper()
        prefix = re.match(r"[A-Z]+", digits)
        number = digits[prefix.end() :].lstrip("-") if prefix else digits
        found.append((match.start(), f"{prefix.group(0)}-{number}" if prefix else number))
    return tuple(dict.fromkeys(value for _, value in sorted(found)))


def find_references(text: str, order_ids: Sequence[str]) -> tuple[str, ...]:
    """Numbers written "#00108" that are not an order the line names (invoices, tickets)."""
    found = [m.group(1) for m in _REFERENCE.finditer(text)]
    return tuple(dict.fromkeys(f"#{n}" for n in found if n not in order_ids))


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def find_emails(text: str) -> tuple[str, ...]:
    """Email addresses as written, e.g. "omar@example.com"."""
    return tuple(dict.fromkeys(match.group(0).rstrip(".") for match in _EMAIL.finditer(text)))


def _strip(text: str, spans: Sequence[tuple[int, int]], refs: Sequence[str]) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    for ref in refs:
        text = text.replace(ref, " ")
    text = re.sub(r"\[\s*shared image:\s*\]", " ", text, flags=re.I)
    text = re.sub(
        r"^\W*(?:hi+|hello|hey+|hiya|yo|good (?:morning|afternoon|evening))\b[\s,!.:-]*(?:there\b)?",
        "",
        text.strip(),
        flags=re.I,
    )
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.!?])", r"\1", text)
    return re.sub(r"^[\s,.;:!-]*(?:and|but|so)?\b[\s,]*", "", text).strip()


_CASE_INTENTS = frozenset(
    {Intent.PROBLEM, Intent.REFUND, Intent.HUMAN, Intent.ORDER, Intent.POLICY, Intent.RECEIPT}
)
# Small talk that closes a case is never read by meaning in answer to a question ("ok").
_CLOSING = frozenset({"thanks", "goodbye"})
_SMALL_TALK_INTENTS = frozenset({Intent.GREETING, Intent.THANKS, Intent.GOODBYE})
# What the patterns say precisely (a kind of problem, "a real person", "where is my order"),
# unlike a word such as "refund", which a policy question uses as much as a request.
_PRECISE = frozenset({Intent.PROBLEM, Intent.HUMAN, Intent.ORDER})
# Where a line about an order it names may still lead by meaning: the order, or a case
# about it (a refund, a problem, a person); never to an article.
_ON_AN_ORDER = frozenset({Intent.ORDER, Intent.REFUND, Intent.PROBLEM, Intent.HUMAN})
_LEADS_TO_INTENT = {
    "order": Intent.ORDER,
    "refund": Intent.REFUND,
    "human": Intent.HUMAN,
    "problem": Intent.PROBLEM,
    "article": Intent.POLICY,
    "greeting": Intent.GREETING,
    "thanks": Intent.THANKS,
    "goodbye": Intent.GOODBYE,
}


@dataclass
class _Understanding:
    intents: set[Intent]
    problems: tuple[str, ...]
    described: bool
    query: str | None = None
    reply: str | None = None


def _by_meaning(spec: Behaviour, found: _Understanding, book: Playbook, said: bool) -> None:
    """Fold what the line means into what the patterns found.

    The meaning decides where a case or question leads; the patterns keep what they
    alone can tell: a shared image, small talk, the kind of problem, and a refund asked
    for with a problem a refund can settle ("it came cold, I want my money back").
    """
    intent = _LEADS_TO_INTENT.get(spec.leads_to)
    cases = found.intents & _CASE_INTENTS
    if intent is None or intent in _SMALL_TALK_INTENTS:
        if not cases:
            found.intents |= {intent} if intent else set()
            found.reply = spec.reply if spec.leads_to == "reply" else None
        return
    refundable = any(k.refundable for k in book.problems if k.label in found.problems)
    kept = found.intents & {Intent.RECEIPT, *_SMALL_TALK_INTENTS, Intent.CANCEL}
    if intent is Intent.PROBLEM and Intent.REFUND in found.intents and refundable:
        kept.add(Intent.REFUND)
    found.intents = kept | {intent}
    if intent is Intent.POLICY:
        # A question however it is phrased: "I want to see your money back policy".
        found.problems, found.described = (), False
        found.query = spec.query or (spec.article or "").replace("-", " ")
    elif intent is Intent.PROBLEM:
        specific = found.problems and found.problems != (GENERIC_PROBLEM,)
        found.problems = found.problems if specific else (spec.label or GENERIC_PROBLEM,)
        # "I have a problem" still needs saying what: the generic kind keeps its own reading.
        found.described = found.problems != (GENERIC_PROBLEM,) or found.described or said


def _answer_vague(words: str, found: _Understanding, book: Playbook, article: str | None) -> None:
    """A vague problem about something the help centre answers with confidence ("my promo
    code doesn't work") is answered from the passage for it not working: the article first,
    whose reply offers a ticket. A question already meant for ``article`` keeps to it."""
    if found.problems not in ((), (GENERIC_PROBLEM,)):
        return  # the meaning named a kind of problem: a ticket
    topic = " ".join(w for w in re.findall(r"[\w'-]+", _plain(words)) if w not in _VAGUE)
    if not topic:
        return
    query = book.vague_problem_query.format(topic=topic)
    best = book.help_center.search(query, k=1)
    if not best or best[0].score < book.passage_confidence:
        return
    if Intent.POLICY in found.intents and article not in (None, best[0].article_id):
        return
    found.intents = (found.intents - {Intent.PROBLEM}) | {Intent.POLICY}
    found.problems, found.described, found.query = (), False, query


def _agreeing(
    match: Match, intents: set[Intent], book: Playbook, *, order_named: bool = False
) -> IntentSpec | None:
    """The best intent, unless the patterns point elsewhere and it is less sure than the
    profile's ``overrule`` (or the runner-up, leading where they point, is within the
    ``clarify_margin``): then the runner-up if it leads where they point ("I can't sign
    in": an account question by meaning, a login problem by its words), else None.
    A line that names an order and asks about it (``order_named``) keeps to the order
    tools unless its meaning is a case about that order."""
    pointed = intents & _PRECISE
    candidates = [s for s in (match.intent, match.runner_up) if s is not None]
    kinds = [_LEADS_TO_INTENT.get(book.behaviour(s).leads_to) for s in candidates]
    if order_named and kinds[0] not in _ON_AN_ORDER:
        return None
    if not pointed or kinds[0] in pointed:
        return match.intent
    second = candidates[1] if len(kinds) > 1 and kinds[1] in pointed else None
    close = second is not None and match.score - match.runner_up_score < book.clarify_margin
    if match.score >= book.overrule and not close:
        return match.intent
    return second


def _close_call(match: Match, book: Playbook) -> tuple[str, str] | None:
    """The two intents to ask between, when the best two are this close and lead apart."""
    second = match.runner_up
    if second is None or match.score - match.runner_up_score >= book.clarify_margin:
        return None
    first, other = book.behaviour(match.intent), book.behaviour(second)
    if not (first.topic and other.topic) or (first.leads_to, first.article) == (
        other.leads_to,
        other.article,
    ):
        return None  # both lead to the same place (two kinds of problem both file a ticket)
    return match.intent.name, second.name


def read_message(
    text: str,
    book: Playbook,
    image_refs: Sequence[str] = (),
    asked: frozenset[Asked] = frozenset(),
    matcher: IntentMatcher | None = None,
    chosen: IntentSpec | None = None,
) -> Reading:
    """Read one customer message, given what the assistant asked just before it.

    With a ``matcher`` (the profile's intents), the line is also matched by meaning;
    ``chosen`` is the intent the customer picked when asked which of two they meant.
    """
    norm = normalise(text, book)
    intents = {intent for intent, pattern in _INTENT_PATTERNS if re.search(pattern, norm)}
    problems = tuple(kind.label for kind in book.problems if kind.pattern.search(norm))
    vague = problems == (GENERIC_PROBLEM,)  # "it doesn't work", saying of no kind what
    order_ids = find_order_ids(text, book)
    emails = find_emails(text)
    found_name = find_name(text, Asked.NAME in asked, book.known_words)
    name = found_name[0] if found_name else None
    spans = [found_name[1]] if found_name else []
    if image_refs:
        intents.add(Intent.RECEIPT)
    # "what's in DD-10229?", "my recent orders please, email …": the order tools, whatever
    # the nearest meaning says about placing an order.
    identified = bool(order_ids or emails)
    if book.order_about.search(norm) or (identified and book.order_about_given.search(norm)):
        intents.add(Intent.ORDER)
    order_named = identified and Intent.ORDER in intents
    is_info = bool(_INFO_QUESTION.search(norm)) and bool(book.question_topics.search(norm))
    if is_info and not _INCIDENT.search(norm) and not order_ids and not order_named:
        # "how do refunds work?" is a question for the help centre, not a case to file.
        intents.add(Intent.POLICY)
        intents.discard(Intent.REFUND)
        problems = ()
    if problems and problems != (GENERIC_PROBLEM,):
        problems = tuple(p for p in problems if p != GENERIC_PROBLEM)
        if not any(k.refundable for k in book.problems if k.label in problems):
            # "the app freezes when I check a refund" is about the app.
            intents.discard(Intent.REFUND)
    if problems:
        intents.add(Intent.PROBLEM)
    words = _strip(text, spans, [*image_refs, *emails])
    described = bool(problems) and (
        problems != (GENERIC_PROBLEM,) or len(words.split()) >= 6 or _says_what(norm)
    )
    if Asked.DETAILS in asked and not (intents - {Intent.PROBLEM}) and name is None and words:
        # The answer to "what happened?" is the problem, whatever words it uses.
        intents.add(Intent.PROBLEM)
        problems = problems or (GENERIC_PROBLEM,)
        described = True
    found = _Understanding(intents, problems, described)
    reported = problems
    spec: IntentSpec | None = chosen
    choices = None
    bare = (name is not None or order_ids or emails) and len(words.split()) <= 2
    answered = Asked.NAME in asked and name is not None
    # An answer to "what happened?" or "which items?" is that, whatever it sounds like.
    readable = not (image_refs or bare or answered or asked & {Asked.DETAILS, Asked.ITEMS})
    if spec is None and matcher is not None and readable:
        match = matcher.match(_strip(text, spans, [*emails, *order_ids]) or text)
        if match is not None and not (asked and book.behaviour(match.intent).leads_to in _CLOSING):
            spec = _agreeing(match, intents, book, order_named=order_named)
            if not (intents or order_ids or emails or name):
                choices = _close_call(match, book)
    hinted = next((q for pattern, q in book.query_hints if pattern.search(norm)), None)
    if hinted and is_info and not order_ids and not order_named and not _INCIDENT.search(norm):
        # The profile's precise question rules outrank the nearest meaning.
        spec, choices = None, None
        found.query = hinted
    plain_words = not re.search(r"[/\\]|://", text)  # a path or link is no question
    if (
        spec is None
        and matcher is not None
        and readable
        and plain_words
        and not found.intents
        and name is None
        and Asked.DETAILS not in asked
    ):
        # Nothing close by meaning: a help-centre passage that clearly answers it still does.
        query = search_query(words, book) if words else ""
        if query and book.confident(query):
            found.intents.add(Intent.POLICY)
            found.query = query
    if spec is not None and choices is None:
        said = len(words.split()) >= 6 or _says_what(norm)
        _by_meaning(book.behaviour(spec), found, book, said)
    if (
        book.answer_vague_problems
        and vague
        and not found.intents & {Intent.REFUND, Intent.HUMAN, Intent.ORDER, Intent.RECEIPT}
        and not (order_ids or name or Asked.DETAILS in asked)
        and plain_words
    ):
        article = book.behaviour(spec).article if spec is not None else None
        _answer_vague(words, found, book, article)
    intents, problems, described = found.intents, found.problems, found.described
    if answered:
        # "thanks, it's Moses" answers the question; it does not close the conversation.
        intents -= {Intent.THANKS, Intent.GOODBYE}
    if intents & {Intent.PROBLEM, Intent.REFUND, Intent.HUMAN, Intent.ORDER, Intent.POLICY}:
        intents -= {Intent.THANKS, Intent.GOODBYE}
    return Reading(
        text=text,
        intents=frozenset(intents),
        problems=problems,
        name=name,
        order_ids=order_ids,
        emails=emails,
        image_refs=tuple(image_refs),
        words=words,
        described=described,
        understood=spec.name if spec else None,
        query=found.query,
        reply=found.reply,
        references=find_references(text, order_ids),
        choices=choices,
        reported=reported,
    )


_FIRST = re.compile(r"\b(?:first|former|1st|the one before)\b|^\W*(?:1|a)\W*$")
_SECOND = re.compile(r"\b(?:second|latter|2nd|other|last one|the other one)\b|^\W*(?:2|b)\W*$")
_TOPIC_WORD = re.compile(r"[a-z]{4,}")


def pick_choice(
    text: str, choices: tuple[str, str], topics: Sequence[str], matcher: IntentMatcher
) -> str | None:
    """Which of two intents an answer to "do you mean A, or B?" picks, if it picks one."""
    plain = _plain(text)
    if _SECOND.search(plain):
        return choices[1]
    if _FIRST.search(plain):
        return choices[0]
    said = {w[:5] for w in _TOPIC_WORD.findall(plain)}
    overlap = [len(said & {w[:5] for w in _TOPIC_WORD.findall(t.lower())}) for t in topics]
    if overlap[0] != overlap[1]:
        return choices[0] if overlap[0] > overlap[1] else choices[1]
    match = matcher.match(text)
    if match is not None:
        for spec in (match.intent, match.runner_up):
            if spec is not None and spec.name in choices:
                return spec.name
    return None
