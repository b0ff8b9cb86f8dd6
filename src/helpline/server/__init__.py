"""The web surface: HTTP API with streamed answers, the customer chat page, the agents' page."""

from helpline.server.app import create_app, create_app_from_env, serve
from helpline.server.ratelimit import Rate, RateLimits

__all__ = ["Rate", "RateLimits", "create_app", "create_app_from_env", "serve"]
