"""Live updates: conversation events reach every open page on every worker and machine."""

from helpline.live.feed import LiveFeed, Subscription

__all__ = ["LiveFeed", "Subscription"]
