"""When people answer: the profile's support hours, and what a customer is told outside them.

``[support]`` in ``profile.toml``::

    timezone = "Europe/Berlin"
    hours = "08:00-23:00"                         # every day
    # hours = { mon-fri = "09:00-18:00", sat = "10:00-14:00" }   # days not named: closed
    # hours = { fri-sat = "18:00-02:00" }         # past midnight: until 02:00 the next morning
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_END_OF_DAY = time(23, 59, 59, 999999)

Opening = tuple[time, time]


@dataclass(frozen=True)
class SupportHours:
    """Opening times per weekday (Monday first; ``None``: closed) in ``timezone``; one that
    closes before it opens runs past midnight into the next day."""

    timezone: str
    days: tuple[Opening | None, ...]

    @classmethod
    def parse(cls, hours: str | dict[str, str], timezone: str) -> SupportHours:
        """From the profile's ``hours`` and ``timezone``; ``ValueError`` says what to fix."""
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"timezone {timezone!r} is not a time zone name; use one such as 'Europe/Berlin'"
            ) from exc
        if isinstance(hours, str):
            return cls(timezone, (_opening(hours),) * 7)
        days: list[Opening | None] = [None] * 7
        for key, value in hours.items():
            for day in _day_range(key):
                days[day] = _opening(value)
        return cls(timezone, tuple(days))

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self._zone())
        now, day = local.time(), local.weekday()
        today, last_night = self.days[day], self.days[day - 1]
        if last_night is not None and _past_midnight(last_night) and now <= last_night[1]:
            return True
        if today is None:
            return False
        opens, closes = today
        return opens <= now and (_past_midnight(today) or now <= closes)

    def next_opening(self, at: datetime) -> datetime | None:
        """When people next start answering after ``at`` (local time); ``None``: never."""
        local = at.astimezone(self._zone())
        for ahead in range(8):
            day = local.date() + timedelta(days=ahead)
            opening = self.days[day.weekday()]
            if opening is None:
                continue
            start = datetime.combine(day, opening[0], self._zone())
            if start > local:
                return start
        return None

    def when_people_answer(self, at: datetime) -> str:
        """One sentence for the customer: now, or when a person will answer."""
        if self.is_open(at):
            return "Someone from the team is working now and will answer soon."
        start = self.next_opening(at)
        if start is None:
            return "Our team is away right now; a person will answer as soon as they are back."
        today = at.astimezone(self._zone()).date()
        if start.date() == today:
            day = "today"
        elif start.date() == today + timedelta(days=1):
            day = "tomorrow"
        else:
            day = f"on {_DAY_NAMES[start.weekday()]}"
        return (
            f"Our team is away right now: a person will answer from {start:%H:%M} {day} "
            f"({self.timezone} time)."
        )


def _opening(text: str) -> Opening | None:
    if text.strip().lower() == "closed":
        return None
    start, dash, end = text.partition("-")
    try:
        if not dash:
            raise ValueError
        opens = time.fromisoformat(start.strip())
        closes = _END_OF_DAY if end.strip() == "24:00" else time.fromisoformat(end.strip())
    except ValueError as exc:
        raise ValueError(
            f"hours {text!r} is not a time range; write it as '08:00-23:00' (or 'closed')"
        ) from exc
    if opens.tzinfo is not None or closes.tzinfo is not None:
        raise ValueError(
            f"hours {text!r} name a UTC offset; write the local times ('08:00-23:00') and set "
            "timezone to the place's time zone"
        )
    if closes == opens:
        raise ValueError(
            f"hours {text!r} close when they open; write '00:00-24:00' for the whole day"
        )
    return opens, closes


def _past_midnight(opening: Opening) -> bool:
    return opening[1] < opening[0]


def _day_range(key: str) -> range:
    first, _, last = key.strip().lower().partition("-")
    if first not in WEEKDAYS or (last and last not in WEEKDAYS):
        raise ValueError(
            f"day {key!r} is not a weekday; use mon, tue, wed, thu, fri, sat, sun or a range "
            "such as mon-fri"
        )
    start = WEEKDAYS.index(first)
    end = WEEKDAYS.index(last) if last else start
    if end < start:
        raise ValueError(f"day range {key!r} runs backwards; write it as mon-fri")
    return range(start, end + 1)
