"""Offline understanding: a customer line matched by meaning to the profile's intents."""
