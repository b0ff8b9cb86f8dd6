"""The support desk's numbers, aggregated by the database (SQLite or PostgreSQL).

Counted are conversations in which the customer wrote at least once, started on or after
``since``. A conversation is *handed off* when the assistant passed it to a person (a
``handoff`` ticket) or a person wrote in it. It is *reopened* when the customer came back
within 24 hours of leaving it: wrote again after rating it or after an hour of silence, or
(signed in) started another conversation. It is *resolved by the assistant* when it was
neither handed off nor reopened and not rated 2 or lower.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Engine,
    Float,
    Select,
    Table,
    and_,
    case,
    column,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union,
    union_all,
)
from sqlalchemy import (
    cast as sql_cast,
)

from helpline.store.conversations import AGENT, WAITING_FOR_AGENT
from helpline.store.ratings import HIGHEST_SCORE, LOWEST_SCORE, StoredRating
from helpline.store.tables import Conversation, StoredMessage, Ticket, TurnUsage

REOPEN_WINDOW = timedelta(hours=24)
"""A customer who writes again within this long of leaving came back: not resolved."""
LEFT_AFTER_SILENCE = timedelta(hours=1)
"""A conversation this long without a message counts as left by the customer."""
LOW_SCORE = 2
"""A rating at or below this says the problem was not solved."""
TOP = 10
"""How many intents, articles and tools the lists show."""
KNOWLEDGE_TOOL = "search_help_center"
ERROR_PREFIX = "Error: "


@dataclass(frozen=True)
class DeskStats:
    """The desk's numbers over conversations started since ``since`` (all, if ``None``)."""

    since: datetime | None
    conversations: int
    resolved_by_assistant: int
    resolution_rate: float | None
    handoffs: int
    handoff_rate: float | None
    """Handed-off conversations over conversations."""
    reopened: int
    median_seconds_to_first_answer: float | None
    median_seconds_to_agent_reply: float | None
    """From the assistant's handoff to a person's first reply after it."""
    ratings: int
    csat_average: float | None
    csat_distribution: dict[str, int]
    """How many ratings gave each score, ``"1"`` to ``"5"``."""
    top_intents: list[dict[str, Any]]
    """What customers came for (their first line's intent), most often first:
    ``{intent, conversations}``."""
    top_articles: list[dict[str, Any]]
    """Help-centre articles the searches found first, most often first: ``{article, count}``."""
    top_tools: list[dict[str, Any]]
    """Tools the assistant called: ``{tool, calls, errors}``."""
    tool_calls: int
    tool_errors: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cost_usd: float
    by_day: list[dict[str, Any]] = field(default_factory=list)
    """Per UTC day: ``{day, conversations, resolved_by_assistant, handoffs}``."""


class Stats:
    """Computes :class:`DeskStats` with a handful of aggregate queries."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sql = _PostgresSql() if engine.dialect.name == "postgresql" else _SqliteSql()

    def compute(self, since: datetime | None = None) -> DeskStats:
        sql = self._sql
        per_conversation = _per_conversation(sql, since).cte("per_conversation")
        pc = per_conversation.c
        by_day = (
            select(pc.day, func.count(), func.sum(_resolved(pc)), func.sum(pc.handed_off))
            .group_by(pc.day)
            .order_by(pc.day)
        )
        calls = _tool_calls(sql, since).subquery("calls")
        tools = select(
            calls.c.tool, calls.c.article, func.count(), func.sum(calls.c.failed)
        ).group_by(calls.c.tool, calls.c.article)
        with self._engine.connect() as connection:
            summary = connection.execute(_summary(per_conversation)).one()
            days = [
                {"day": str(day), "conversations": n, "resolved_by_assistant": r, "handoffs": h}
                for day, n, r, h in connection.execute(by_day)
            ]
            tool_rows = connection.execute(tools).all()
            usage = connection.execute(_usage(since)).one()
            intents = connection.execute(_intents(since)).all()
        count, resolved_count, handoffs, reopened, rated, average, first_answer, agent_reply = (
            summary[:8]
        )
        scores = dict(zip(range(LOWEST_SCORE, HIGHEST_SCORE + 1), summary[8:], strict=True))
        calls_by_tool: dict[str, list[int]] = {}
        for tool, _article, n, failed in tool_rows:
            counted = calls_by_tool.setdefault(tool, [0, 0])
            counted[0] += n
            counted[1] += int(failed or 0)
        ranked_tools = sorted(calls_by_tool.items(), key=lambda item: (-item[1][0], item[0]))
        articles = sorted(
            ((article, n) for _tool, article, n, _failed in tool_rows if article is not None),
            key=lambda item: (-item[1], item[0]),
        )
        return DeskStats(
            since=since,
            conversations=count,
            resolved_by_assistant=int(resolved_count),
            resolution_rate=_ratio(resolved_count, count),
            handoffs=int(handoffs),
            handoff_rate=_ratio(handoffs, count),
            reopened=int(reopened),
            median_seconds_to_first_answer=_seconds(first_answer),
            median_seconds_to_agent_reply=_seconds(agent_reply),
            ratings=rated,
            csat_average=round(float(average), 2) if average is not None else None,
            csat_distribution={str(score): int(n or 0) for score, n in scores.items()},
            top_intents=[{"intent": i, "conversations": n} for i, n in intents],
            top_articles=[{"article": a, "count": n} for a, n in articles[:TOP]],
            top_tools=[{"tool": t, "calls": n, "errors": e} for t, (n, e) in ranked_tools[:TOP]],
            tool_calls=sum(n for _t, (n, _e) in ranked_tools),
            tool_errors=sum(e for _t, (_n, e) in ranked_tools),
            prompt_tokens=int(usage[0]),
            cached_tokens=int(usage[1]),
            completion_tokens=int(usage[2]),
            reasoning_tokens=int(usage[3]),
            cost_usd=round(float(usage[4]), 6),
            by_day=days,
        )


def _ratio(part: Any, whole: int) -> float | None:
    return round(float(part) / whole, 4) if whole else None


def _seconds(value: Any) -> float | None:
    return round(float(value), 3) if value is not None else None


def _not_low(score: ColumnElement[Any]) -> ColumnElement[bool]:
    return or_(score.is_(None), score > LOW_SCORE)


_conversations = cast(Table, Conversation.__table__)
_messages = cast(Table, StoredMessage.__table__)
_tickets = cast(Table, Ticket.__table__)
_ratings = cast(Table, StoredRating.__table__)
_turn_usage = cast(Table, TurnUsage.__table__)


def _scope(since: datetime | None) -> Select[Any]:
    """Conversations started since ``since``, with the time of the customer's first message."""
    query = (
        select(
            _conversations.c.id,
            _conversations.c.created_at,
            _conversations.c.status,
            _conversations.c.updated_at,
            _conversations.c.customer_id,
            func.min(_messages.c.created_at).label("first_user_at"),
        )
        .join(_messages, _messages.c.conversation_id == _conversations.c.id)
        .where(_messages.c.role == "user")
        .group_by(
            _conversations.c.id,
            _conversations.c.created_at,
            _conversations.c.status,
            _conversations.c.updated_at,
            _conversations.c.customer_id,
        )
    )
    if since is not None:
        query = query.where(_conversations.c.created_at >= since)
    return query


def _per_conversation(sql: _Sql, since: datetime | None) -> Select[Any]:
    """One row per counted conversation with what the numbers are made of."""
    scope = _scope(since).cte("scope")
    m = _messages.alias("m")
    is_agent = func.coalesce(m.c.wire["name"].as_string(), "") == AGENT
    first_answer = (
        select(m.c.conversation_id, func.min(m.c.created_at).label("at"))
        .join(scope, scope.c.id == m.c.conversation_id)
        .where(m.c.role == "assistant", ~is_agent, m.c.created_at >= scope.c.first_user_at)
        .group_by(m.c.conversation_id)
        .subquery("first_answer")
    )
    people = _people(is_agent, m).subquery("people")
    reopened = _reopened(sql, scope).subquery("reopened")
    handed_off = or_(people.c.cid.is_not(None), scope.c.status == WAITING_FOR_AGENT)
    return (
        select(
            scope.c.id,
            sql.day(scope.c.created_at).label("day"),
            sql.seconds(first_answer.c.at, scope.c.first_user_at).label("first_answer_seconds"),
            case((handed_off, 1), else_=0).label("handed_off"),
            sql.seconds(people.c.agent_at, people.c.handoff_at).label("agent_reply_seconds"),
            case((reopened.c.conversation_id.is_not(None), 1), else_=0).label("reopened"),
            _ratings.c.score,
        )
        .select_from(scope)
        .outerjoin(first_answer, first_answer.c.conversation_id == scope.c.id)
        .outerjoin(people, people.c.cid == scope.c.id)
        .outerjoin(reopened, reopened.c.conversation_id == scope.c.id)
        .outerjoin(_ratings, _ratings.c.conversation_id == scope.c.id)
    )


def _people(is_agent: ColumnElement[bool], m: Any) -> Select[Any]:
    """Per conversation a person was in: the first handoff, and a person's first message after
    it. From one sorted pass over handoff tickets and people's messages, with no join whose
    size the planner must guess."""
    moments = union_all(
        select(
            _tickets.c.conversation_id.label("cid"),
            _tickets.c.created_at.label("at"),
            literal("handoff").label("kind"),
        ).where(_tickets.c.category == "handoff"),
        select(m.c.conversation_id, m.c.created_at, literal("agent")).where(
            m.c.role == "assistant", is_agent
        ),
    ).subquery("moments")
    first_handoff = func.min(case((moments.c.kind == "handoff", moments.c.at)))
    marked = select(
        moments.c.cid,
        moments.c.at,
        moments.c.kind,
        first_handoff.over(partition_by=moments.c.cid).label("handoff_at"),
    ).subquery("marked")
    replied = and_(marked.c.kind == "agent", marked.c.at >= marked.c.handoff_at)
    return select(
        marked.c.cid,
        func.min(marked.c.handoff_at).label("handoff_at"),
        func.min(case((replied, marked.c.at))).label("agent_at"),
    ).group_by(marked.c.cid)


def _reopened(sql: _Sql, scope: Any) -> Any:
    """Conversations the customer came back to within :data:`REOPEN_WINDOW` of leaving."""
    m = _messages.alias("m")
    previous = func.lag(m.c.created_at).over(
        partition_by=m.c.conversation_id, order_by=m.c.position
    )
    gaps = (
        select(m.c.conversation_id, m.c.role, m.c.created_at, previous.label("previous_at"))
        .join(scope, scope.c.id == m.c.conversation_id)
        .subquery("gaps")
    )
    pause = sql.seconds(gaps.c.created_at, gaps.c.previous_at)
    after_silence = select(gaps.c.conversation_id).where(
        gaps.c.role == "user",
        pause >= LEFT_AFTER_SILENCE.total_seconds(),
        pause <= REOPEN_WINDOW.total_seconds(),
    )
    since_rating = sql.seconds(m.c.created_at, _ratings.c.created_at)
    after_rating = (
        select(m.c.conversation_id)
        .join(scope, scope.c.id == m.c.conversation_id)
        .join(_ratings, _ratings.c.conversation_id == m.c.conversation_id)
        .where(
            m.c.role == "user",
            m.c.created_at > _ratings.c.created_at,
            since_rating <= REOPEN_WINDOW.total_seconds(),
        )
    )
    later = _conversations.alias("later")
    came_back = sql.seconds(later.c.created_at, scope.c.updated_at)
    in_another = (
        select(scope.c.id)
        .join(
            later,
            and_(
                later.c.customer_id == scope.c.customer_id,
                later.c.id != scope.c.id,
                later.c.created_at > scope.c.created_at,
                came_back <= REOPEN_WINDOW.total_seconds(),
            ),
        )
        .where(scope.c.customer_id.is_not(None))
    )
    return union(after_silence, after_rating, in_another)


def _tool_calls(sql: _Sql, since: datetime | None) -> Select[Any]:
    """Every tool call in the counted conversations: its tool, whether it failed, and for a
    help-centre search the article it found first."""
    scope = _scope(since).cte("tool_scope")
    asked = _messages.alias("asked")
    answered = _messages.alias("answered")
    call = sql.tool_calls(asked.c.wire)
    content = answered.c.wire["content"].as_string()
    return (
        select(
            call.name.label("tool"),
            case((content.startswith(ERROR_PREFIX, autoescape=True), 1), else_=0).label("failed"),
            case((call.name == KNOWLEDGE_TOOL, sql.first_article(content)), else_=null()).label(
                "article"
            ),
        )
        .select_from(asked)
        .join(scope, scope.c.id == asked.c.conversation_id)
        .join(call.source, true())
        .outerjoin(
            answered,
            and_(
                answered.c.conversation_id == asked.c.conversation_id,
                answered.c.role == "tool",
                answered.c.wire["tool_call_id"].as_string() == call.id,
            ),
        )
        .where(asked.c.role == "assistant", call.where)
    )


def _intents(since: datetime | None) -> Select[Any]:
    """The :data:`TOP` most common intents of the counted conversations, with how many."""
    scope = _scope(since).subquery("intent_scope")
    intent = _conversations.c.intent
    conversations = func.count().label("conversations")
    return (
        select(intent, conversations)
        .join(scope, scope.c.id == _conversations.c.id)
        .where(intent.is_not(None))
        .group_by(intent)
        .order_by(conversations.desc(), intent)
        .limit(TOP)
    )


def _usage(since: datetime | None) -> Select[Any]:
    """Tokens and cost of the turns in conversations started since ``since``."""
    u = _turn_usage.c
    query = select(
        *(
            func.coalesce(func.sum(c), literal(0))
            for c in (u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.reasoning_tokens)
        ),
        func.coalesce(func.sum(u.cost_usd), literal(0)),
    )
    if since is not None:
        query = query.join(_conversations, _conversations.c.id == u.conversation_id).where(
            _conversations.c.created_at >= since
        )
    return query


def _resolved(pc: Any) -> ColumnElement[int]:
    """1 for a conversation the assistant resolved, else 0."""
    return case((and_(pc.handed_off == 0, pc.reopened == 0, _not_low(pc.score)), 1), else_=0)


def _ranked(values: ColumnElement[Any], name: str) -> list[Any]:
    """Each row's rank among the non-null ``values``, and how many there are (for a median)."""
    missing = values.is_(None)
    return [
        func.row_number().over(partition_by=missing, order_by=values).label(f"{name}_rank"),
        func.count().over(partition_by=missing).label(f"{name}_count"),
    ]


def _middle(values: Any, rank: Any, count: Any) -> ColumnElement[Any]:
    """The median: the middle row (odd count) or the mean of the two middle rows (even
    count), i.e. the rows whose 2·rank is in [count, count + 2]."""
    return func.avg(case((and_(values.is_not(None), (rank * 2).between(count, count + 2)), values)))


def _summary(per_conversation: Any) -> Select[Any]:
    """One row: conversations, resolved, handed off, reopened, ratings, CSAT average, the two
    medians, then how many ratings gave each score."""
    pc = per_conversation.c
    ranked = select(
        per_conversation,
        *_ranked(pc.first_answer_seconds, "first"),
        *_ranked(pc.agent_reply_seconds, "reply"),
    ).subquery("ranked")
    r = ranked.c
    return select(
        func.count(),
        func.coalesce(func.sum(_resolved(r)), 0),
        func.coalesce(func.sum(r.handed_off), 0),
        func.coalesce(func.sum(r.reopened), 0),
        func.count(r.score),
        func.avg(sql_cast(r.score, Float)),
        _middle(r.first_answer_seconds, r.first_rank, r.first_count),
        _middle(r.agent_reply_seconds, r.reply_rank, r.reply_count),
        *(
            func.sum(case((r.score == score, 1), else_=0))
            for score in range(LOWEST_SCORE, HIGHEST_SCORE + 1)
        ),
    )


@dataclass(frozen=True)
class _Calls:
    """The ``tool_calls`` of an assistant message as rows to join: each call's id and name."""

    source: Any
    id: ColumnElement[Any]
    name: ColumnElement[Any]
    where: ColumnElement[bool]


class _Sql:
    """The few expressions SQLite and PostgreSQL spell differently."""

    def seconds(self, later: Any, earlier: Any) -> ColumnElement[Any]:
        raise NotImplementedError

    def day(self, moment: Any) -> ColumnElement[Any]:
        raise NotImplementedError

    def tool_calls(self, wire: Any) -> _Calls:
        raise NotImplementedError

    def first_article(self, content: Any) -> ColumnElement[Any]:
        """The first result's article title in a help-centre search result (JSON text)."""
        raise NotImplementedError


class _SqliteSql(_Sql):
    def seconds(self, later: Any, earlier: Any) -> ColumnElement[Any]:
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0

    def day(self, moment: Any) -> ColumnElement[Any]:
        return func.date(moment)

    def tool_calls(self, wire: Any) -> _Calls:
        each = func.json_each(wire, "$.tool_calls").table_valued("value", "type").alias("call")
        return _Calls(
            each,
            func.json_extract(each.c.value, "$.id"),
            func.json_extract(each.c.value, "$.function.name"),
            each.c.type == "object",
        )

    def first_article(self, content: Any) -> ColumnElement[Any]:
        return case(
            (func.json_valid(content) == 1, func.json_extract(content, "$.results[0].article"))
        )


class _PostgresSql(_Sql):
    def seconds(self, later: Any, earlier: Any) -> ColumnElement[Any]:
        return func.extract("epoch", later - earlier)

    def day(self, moment: Any) -> ColumnElement[Any]:
        return func.to_char(func.timezone("UTC", moment), "YYYY-MM-DD")

    def tool_calls(self, wire: Any) -> _Calls:
        from sqlalchemy.dialects.postgresql import JSONB

        calls = sql_cast(wire, JSONB)["tool_calls"]
        listed = case((func.jsonb_typeof(calls) == "array", calls))
        each = (
            func.jsonb_array_elements(listed).table_valued(column("value", JSONB)).lateral("call")
        )
        return _Calls(
            each,
            each.c.value["id"].astext,
            each.c.value["function"]["name"].astext,
            func.jsonb_typeof(each.c.value) == "object",
        )

    def first_article(self, content: Any) -> ColumnElement[Any]:
        from sqlalchemy.dialects.postgresql import JSONB

        document = sql_cast(content, JSONB)
        return case(
            (content.like("{%}"), document["results"][0]["article"].astext),
        )
