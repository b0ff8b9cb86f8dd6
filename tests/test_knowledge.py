"""Help centre: passages, search quality on customers' own words, and the search tool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpline.messages import ToolCall
from helpline.store import Store
from helpline.support.knowledge import HelpCenter, help_center_for, knowledge_tools, split_passages
from helpline.support.profile import Article, ProfileError, load_profile
from helpline.tools import ToolContext, Toolset

# Questions as customers type them, and the article that answers each. Shared with
# bench/retrieval.py, which prints the hit rates.
RETRIEVAL_CASES: list[tuple[str, str]] = [
    ("where tf is my food", "late-orders"),
    ("charged twice??", "payments-and-double-charges"),
    ("can i get my money back for cold pizza", "damaged-or-cold-food"),
    ("forgot password", "login-and-password"),
    ("my order is 40 min late", "late-orders"),
    ("how do i track my order", "delivery-times-and-tracking"),
    ("they forgot my fries", "missing-or-wrong-items"),
    ("got someone elses order lol", "missing-or-wrong-items"),
    ("drink spilled all over the bag", "damaged-or-cold-food"),
    ("how long does a refund take to show up on my card", "refund-timing"),
    ("refund still not on my bank statement", "refund-timing"),
    ("how many days do i have to ask for a refund", "refund-policy"),
    ("promo code not working", "promo-codes"),
    ("discount code says expired", "promo-codes"),
    ("how do i cancel my order", "cancelling-an-order"),
    ("can i cancel after the restaurant accepted it", "cancelling-an-order"),
    ("cant log in", "login-and-password"),
    ("reset pasword link never came", "login-and-password"),
    ("how do i change my email adress", "changing-email-or-phone"),
    ("new phone number, how to update", "changing-email-or-phone"),
    ("does the pad thai have peanuts? im allergic", "allergens-and-dietary"),
    ("is there gluten free options", "allergens-and-dietary"),
    ("i want to talk to a real person", "contacting-a-human"),
    ("let me speak to an agent pls", "contacting-a-human"),
    ("how much should i tip the driver", "courier-tips"),
    ("can i change the tip after delivery", "courier-tips"),
    ("delete my account and all my data", "privacy-and-data-deletion"),
    ("what data do you keep about me", "privacy-and-data-deletion"),
    ("payment declined", "payments-and-double-charges"),
    ("pending charge after I cancelled", "payments-and-double-charges"),
    ("how do i place an order", "placing-an-order"),
    ("can i schedule an order for later", "placing-an-order"),
    ("whats the delivery time usually", "delivery-times-and-tracking"),
    ("food arrived cold and soggy", "damaged-or-cold-food"),
    ("wrong item in my bag", "missing-or-wrong-items"),
    ("refund for order older than 2 weeks?", "refund-policy"),
    ("app says delivered but i got nothing", "late-orders"),
    ("does the courier get the whole tip", "courier-tips"),
    ("apple pay not working", "payments-and-double-charges"),
    ("voucher didnt apply to my order", "promo-codes"),
    ("whats ur number i need to call someone", "contacting-a-human"),
    ("burger was squashed, box crushed", "damaged-or-cold-food"),
    ("where is my refund", "refund-timing"),
]

TOP3_TARGET = 0.90


def hit_rates(centre: HelpCenter, cases: list[tuple[str, str]]) -> tuple[float, float]:
    """Share of questions whose article is first, and among the first three."""
    top1 = top3 = 0
    for question, expected in cases:
        found = [p.article_id for p in centre.search(question, k=3)]
        top1 += found[:1] == [expected]
        top3 += expected in found
    return top1 / len(cases), top3 / len(cases)


def test_every_case_names_a_real_article() -> None:
    ids = {a.id for a in load_profile().articles}
    assert {expected for _, expected in RETRIEVAL_CASES} <= ids
    assert len(RETRIEVAL_CASES) >= 30


def test_customer_questions_find_their_article() -> None:
    _, top3 = hit_rates(help_center_for(load_profile()), RETRIEVAL_CASES)
    assert top3 >= TOP3_TARGET


def test_passages_keep_title_and_split_at_sections() -> None:
    article = Article(
        "a", "Refunds", "Intro text.\n\n## Window\nWithin 14 days.\n\n## Timing\nFast."
    )
    passages = split_passages(article)
    assert [(p.title, p.section, p.text) for p in passages] == [
        ("Refunds", "", "Intro text."),
        ("Refunds", "Window", "Within 14 days."),
        ("Refunds", "Timing", "Fast."),
    ]


def test_search_returns_one_passage_per_article_best_first() -> None:
    centre = help_center_for(load_profile())
    found = centre.search("refund", k=3)
    assert len({p.article_id for p in found}) == len(found) == 3
    assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)


def test_misspelt_words_are_corrected_to_help_centre_words() -> None:
    centre = HelpCenter([Article("pw", "Passwords", "## Reset\nReset your password by email.")])
    assert [p.article_id for p in centre.search("pasword")] == ["pw"]


def test_unrelated_or_empty_question_finds_nothing() -> None:
    centre = help_center_for(load_profile())
    assert centre.search("quantum chromodynamics") == []
    assert centre.search("the and of") == []


def test_help_center_is_built_once_per_profile() -> None:
    profile = load_profile()
    assert help_center_for(profile) is help_center_for(profile)
    assert help_center_for(load_profile()) is not help_center_for(profile)


async def _call(query: object, sqlite_store: Store) -> str:
    toolset = Toolset(knowledge_tools(load_profile()))
    context = ToolContext(conversation_id="c1", tool_call_id="call_1", store=sqlite_store)
    call = ToolCall.make("call_1", "search_help_center", json.dumps({"query": query}))
    return await toolset.call(call, context)


async def test_tool_returns_titled_passages_to_cite(sqlite_store: Store) -> None:
    result = json.loads(await _call("charged twice", sqlite_store))
    first = result["results"][0]
    assert first["article"] == "Payments, pending charges and double charges"
    assert first["section"] == "I was charged twice"
    assert "pending" in first["text"]


async def test_tool_says_clearly_when_nothing_matches(sqlite_store: Store) -> None:
    result = json.loads(await _call("quantum chromodynamics", sqlite_store))
    assert result["results"] == []
    assert "No help-centre article" in result["message"]


async def test_tool_rejects_empty_and_invalid_queries(sqlite_store: Store) -> None:
    assert (await _call("  ", sqlite_store)).startswith("Error: the search query is empty")
    assert (await _call(42, sqlite_store)).startswith("Error: invalid arguments")


def test_profile_fills_policy_placeholders() -> None:
    profile = load_profile()
    refund = next(a for a in profile.articles if a.id == "refund-policy")
    assert "within 14 days of delivery" in refund.body
    assert "$" not in profile.system_prompt
    assert profile.name in profile.system_prompt


def test_profile_errors_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"profile\.toml is missing"):
        load_profile(tmp_path)
    (tmp_path / "profile.toml").write_text(
        '[company]\nname = "Acme"\n[policy]\ncurrency = "euro"\n'
    )
    with pytest.raises(ProfileError, match=r"policy\.currency"):
        load_profile(tmp_path)
    (tmp_path / "profile.toml").write_text('[company]\nname = "Acme"\n')
    with pytest.raises(ProfileError, match=r"prompt\.md is missing"):
        load_profile(tmp_path)
    (tmp_path / "prompt.md").write_text("You help $company customers.")
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "x.md").write_text("No title here.")
    with pytest.raises(ProfileError, match='must start with a "# Title"'):
        load_profile(tmp_path)
    (tmp_path / "articles" / "x.md").write_text("# Hours\n\n## Open\nWe open at $support_hours.")
    profile = load_profile(tmp_path)
    assert profile.system_prompt == "You help Acme customers."
    assert profile.tools is None
    assert profile.settings.refund_window_days == 14
