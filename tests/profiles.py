"""Profiles for tests of other refund rules: every refund the rules allow is paid at once."""

from __future__ import annotations

from dataclasses import replace

from helpline.support.profile import Profile, load_profile


def paid_at_once(profile: Profile | None = None) -> Profile:
    """``profile`` (default: the built-in one) with no refund waiting for a person's approval."""
    loaded = profile or load_profile()
    settings = replace(loaded.settings, refund_approval_over=None, refund_approval_when=())
    return replace(loaded, settings=settings)
