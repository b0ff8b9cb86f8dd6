"""Support hours from the profile: when people answer, what a handoff says outside them, and
the widget's defaults and "talk to a person first" over HTTP."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.models.scripted import ScriptedModel
from helpline.server import create_app
from helpline.server.testing import LiveServer
from helpline.store import Store
from helpline.support.handoff import hand_over
from helpline.support.hours import SupportHours
from helpline.support.profile import DEFAULT_PROFILE, ProfileError, load_profile

WEEKDAYS = SupportHours.parse({"mon-fri": "09:00-18:00", "sat": "10:00-14:00"}, "Europe/Berlin")
# Berlin is UTC+1 in December: 2026-12-04 is a Friday.
FRIDAY_NOON = datetime(2026, 12, 4, 11, 0, tzinfo=UTC)
FRIDAY_EVENING = datetime(2026, 12, 4, 19, 0, tzinfo=UTC)
SATURDAY_DAWN = datetime(2026, 12, 5, 5, 0, tzinfo=UTC)
SATURDAY_EVENING = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)


def test_open_and_the_next_opening_follow_the_timezone() -> None:
    assert WEEKDAYS.is_open(FRIDAY_NOON)
    assert not WEEKDAYS.is_open(FRIDAY_EVENING)
    assert WEEKDAYS.next_opening(FRIDAY_EVENING) == datetime(
        2026, 12, 5, 10, 0, tzinfo=WEEKDAYS._zone()
    )
    assert WEEKDAYS.when_people_answer(FRIDAY_NOON).startswith("Someone from the team is working")
    assert WEEKDAYS.when_people_answer(FRIDAY_EVENING) == (
        "Our team is away right now: a person will answer from 10:00 tomorrow (Europe/Berlin time)."
    )
    assert "from 10:00 today" in WEEKDAYS.when_people_answer(SATURDAY_DAWN)
    assert "from 09:00 on Monday" in WEEKDAYS.when_people_answer(SATURDAY_EVENING)
    every_day = SupportHours.parse("00:00-24:00", "UTC")
    assert every_day.is_open(datetime(2026, 12, 4, 23, 59, 59, tzinfo=UTC))


def test_hours_past_midnight_run_into_the_next_morning() -> None:
    late = SupportHours.parse({"fri-sat": "18:00-02:00"}, "Europe/Berlin")
    assert late.is_open(FRIDAY_EVENING)  # 20:00 on Friday
    assert late.is_open(SATURDAY_DAWN.replace(hour=0, minute=30))  # 01:30 on Saturday
    assert not late.is_open(SATURDAY_DAWN)  # 06:00 on Saturday
    assert late.is_open(datetime(2026, 12, 6, 0, 59, tzinfo=UTC))  # 01:59 on Sunday
    assert not late.is_open(datetime(2026, 12, 6, 1, 1, tzinfo=UTC))  # Sunday is closed
    assert not late.is_open(datetime(2026, 12, 4, 0, 30, tzinfo=UTC))  # Thursday night was not
    assert "from 18:00 today" in late.when_people_answer(SATURDAY_DAWN)


def test_the_hours_follow_the_clocks_across_summer_time() -> None:
    # Berlin moves its clocks from 02:00 to 03:00 on Sunday 2026-03-29 (UTC+1 to UTC+2).
    every_day = SupportHours.parse("09:00-18:00", "Europe/Berlin")
    assert not every_day.is_open(datetime(2026, 3, 28, 7, 30, tzinfo=UTC))  # 08:30 CET
    assert every_day.is_open(datetime(2026, 3, 29, 7, 30, tzinfo=UTC))  # 09:30 CEST
    assert not every_day.is_open(datetime(2026, 3, 29, 16, 30, tzinfo=UTC))  # 18:30 CEST
    saturday_night = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)
    assert every_day.next_opening(saturday_night) == datetime(
        2026, 3, 29, 7, 0, tzinfo=UTC
    )  # 09:00 in summer time
    assert "from 09:00 tomorrow" in every_day.when_people_answer(saturday_night)


@pytest.mark.parametrize(
    ("hours", "timezone", "said"),
    [
        ('"9 to 5"', "UTC", "is not a time range; write it as '08:00-23:00'"),
        ('"09:00-09:00"', "UTC", "close when they open; write '00:00-24:00'"),
        ('"09:00+01:00-17:00"', "Europe/Berlin", "name a UTC offset; write the local times"),
        ('"09:00-17:00+01:00"', "Europe/Berlin", "name a UTC offset; write the local times"),
        ('{ monday = "09:00-17:00" }', "UTC", "day 'monday' is not a weekday"),
        ('{ fri-mon = "09:00-17:00" }', "UTC", "runs backwards"),
        ('"09:00-17:00"', "Mars/Olympus", "is not a time zone name"),
    ],
)
def test_a_wrong_schedule_names_the_setting_and_how_to_write_it(
    tmp_path: Path, hours: str, timezone: str, said: str
) -> None:
    folder = profile_with(tmp_path, f'[support]\ntimezone = "{timezone}"\nhours = {hours}\n')
    with pytest.raises(ProfileError, match=r"\[support\]") as refused:
        load_profile(folder)
    assert said in str(refused.value)


def profile_with(tmp_path: Path, support: str) -> Path:
    """A copy of the default profile whose [support] section is ``support``."""
    folder = tmp_path / "profile"
    shutil.copytree(DEFAULT_PROFILE, folder)
    config = folder / "profile.toml"
    text = config.read_text()
    start = text.index("[support]")
    end = text.index("\n[", start + 1)
    config.write_text(text[:start] + support + text[end:])
    return folder


def test_a_handoff_outside_the_hours_says_when_a_person_will_answer(
    store: Store, tmp_path: Path
) -> None:
    folder = profile_with(
        tmp_path, '[support]\ntimezone = "Europe/Berlin"\nhours = { mon-fri = "09:00-18:00" }\n'
    )
    profile = load_profile(folder)
    conversation_id = store.conversations.create()
    result = hand_over(
        store, profile, conversation_id, "call_1", "wants a person", now=SATURDAY_EVENING
    ).result()
    assert "a person will answer from 09:00 on Monday (Europe/Berlin time)" in result["message"]
    assert "Our agents work every day from 08:00 to 23:00 (CET)." in result["message"]
    during = hand_over(store, profile, conversation_id, "call_2", "again", now=FRIDAY_NOON).result()
    assert "Someone from the team is working now" in during["message"]
    assert during["ticket_id"] == result["ticket_id"]  # still one handoff ticket


@pytest.fixture
def server(sqlite_store: Store) -> Iterator[str]:
    profile = load_profile()
    assistant = Assistant(ScriptedModel(), sqlite_store, [], profile.system_prompt)
    with LiveServer(create_app(assistant, Settings(admin_key="agents"))) as live:
        yield live.url


def test_the_widget_reads_its_defaults_from_the_profile(server: str) -> None:
    config = httpx.get(server + "/api/widget/config").json()
    assert config["company"] == "Dishdash"
    assert config["color"] == "#0f766e" and config["position"] == "right"
    assert config["greeting"] == "Hi! How can we help with your order today?"
    assert config["offer_person_first"] is True
    assert config["hours"] == "every day from 08:00 to 23:00 (CET)"
    assert isinstance(config["open_now"], bool)
    assert config["signed_in_customers"] is False


def test_a_customer_can_ask_for_a_person_before_the_assistant_starts(
    server: str, sqlite_store: Store
) -> None:
    created = httpx.post(server + "/api/conversations").json()
    customer = {"Authorization": f"Bearer {created['token']}"}
    url = f"{server}/api/conversations/{created['id']}/handoff"
    blank = httpx.post(url, headers=customer, json={"name": "   "})
    assert blank.status_code == 422 and "name" in blank.text
    handed = httpx.post(url, headers=customer, json={"name": " Ana "})
    assert handed.status_code == 200, handed.text
    assert handed.json()["message"].startswith("A person from the Dishdash support team")
    again = httpx.post(url, headers=customer)
    assert again.json()["ticket_id"] == handed.json()["ticket_id"]
    messages = httpx.get(f"{server}/api/conversations/{created['id']}", headers=customer).json()
    assert messages["status"] == "waiting_for_agent"
    assert [m["content"] for m in messages["messages"]] == [handed.json()["message"]]
    [ticket] = sqlite_store.tickets.find(conversation_id=created["id"])
    assert (ticket.name, ticket.category) == ("Ana", "handoff")
    refused = httpx.post(url, headers={"Authorization": "Bearer agents"})
    assert refused.status_code == 403 and "Only the customer" in refused.text
    assert httpx.post(url).status_code == 401


def test_a_profile_that_answers_with_the_assistant_first_refuses_it(
    sqlite_store: Store, tmp_path: Path
) -> None:
    folder = profile_with(tmp_path, "[support]\noffer_person_first = false\n")
    assistant = Assistant(ScriptedModel(), sqlite_store, [], "You help.")
    with LiveServer(create_app(assistant, Settings(profile=str(folder)))) as live:
        assert httpx.get(live.url + "/api/widget/config").json()["offer_person_first"] is False
        created = httpx.post(live.url + "/api/conversations").json()
        refused = httpx.post(
            f"{live.url}/api/conversations/{created['id']}/handoff",
            headers={"Authorization": f"Bearer {created['token']}"},
        )
        assert refused.status_code == 403
        assert "answers with the assistant first" in refused.json()["error"]["message"]


async def test_asking_for_a_person_twice_at_once_files_one_ticket_and_one_note(
    store: Store,
) -> None:
    profile = load_profile()
    assistant = Assistant(ScriptedModel(), store, [], profile.system_prompt)
    with LiveServer(create_app(assistant, Settings(admin_key="agents"))) as live:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            created = (await client.post("/api/conversations")).json()
            customer = {"Authorization": f"Bearer {created['token']}"}
            url = f"/api/conversations/{created['id']}/handoff"
            answers = await asyncio.gather(
                *(client.post(url, headers=customer, json={}) for _ in range(8))
            )
            assert {a.status_code for a in answers} == {200}
            assert len({a.json()["ticket_id"] for a in answers}) == 1
            shown = await client.get(f"/api/conversations/{created['id']}", headers=customer)
    notes = [m for m in shown.json()["messages"] if m["role"] == "assistant"]
    assert len(notes) == 1, notes
