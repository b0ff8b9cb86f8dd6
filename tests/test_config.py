"""Settings: environment, .env file, flags, and which backend they select."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpline.config import XAI_BASE_URL, ConfigError, Settings
from helpline.models.openai_compat import OpenAICompatModel
from helpline.models.openai_responses import ResponsesModel

VARIABLES = (
    "XAI_API_KEY",
    "HELPLINE_BASE_URL",
    "HELPLINE_API_KEY",
    "HELPLINE_MODEL",
    "HELPLINE_VISION_MODEL",
    "HELPLINE_DATABASE_URL",
    "HELPLINE_ADMIN_KEY",
    "HELPLINE_GGUF",
    "HELPLINE_PROFILE",
    "HELPLINE_MAX_OUTPUT_TOKENS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_nothing_set_means_the_offline_assistant(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path / ".env")
    assert settings.backend == "offline"
    assert settings.build_vision_model() is None


def test_xai_key_selects_grok(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XAI_API_KEY", "xai-secret")
    settings = Settings.from_env(tmp_path / ".env")
    assert settings.backend == "xai"
    assert settings.endpoint() == (XAI_BASE_URL, "xai-secret", "grok-4")
    vision = settings.build_vision_model()
    assert isinstance(vision, ResponsesModel) and vision.model == "grok-4"
    assert isinstance(settings.build_model(), ResponsesModel)  # xAI's recommended API


def test_env_file_fills_only_what_is_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("HELPLINE_BASE_URL=http://localhost:11434/v1\nHELPLINE_MODEL=from-file\n")
    monkeypatch.setenv("HELPLINE_MODEL", "from-env")
    settings = Settings.from_env(env_file)
    assert settings.backend == "openai-compatible"
    assert settings.endpoint() == ("http://localhost:11434/v1", None, "from-env")
    # Reading the file leaves the process environment as it was: nothing leaks elsewhere.
    assert "HELPLINE_BASE_URL" not in os.environ


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HELPLINE_MODEL", "env-model")
    settings = Settings.from_env(tmp_path / ".env").override(model="flag-model", base_url=None)
    assert settings.model == "flag-model"


def test_a_base_url_wins_over_an_xai_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XAI_API_KEY", "xai-secret")
    monkeypatch.setenv("HELPLINE_BASE_URL", "http://vllm:8000/v1")
    settings = Settings.from_env(tmp_path / ".env")
    assert settings.backend == "openai-compatible"
    assert settings.build_vision_model() is None  # an arbitrary endpoint: read receipts offline


def test_the_output_limit_reaches_both_models(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XAI_API_KEY", "xai-secret")
    monkeypatch.setenv("HELPLINE_API_STYLE", "chat")
    monkeypatch.setenv("HELPLINE_MAX_OUTPUT_TOKENS", "1500")
    settings = Settings.from_env(tmp_path / ".env")
    model, vision = settings.build_model(), settings.build_vision_model()
    assert isinstance(model, OpenAICompatModel) and isinstance(vision, OpenAICompatModel)
    assert model.max_output_tokens == vision.max_output_tokens == 1500
    assert model.request_body([], None, None)["max_tokens"] == 1500


def test_without_an_output_limit_set_the_default_is_sent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XAI_API_KEY", "xai-secret")
    monkeypatch.setenv("HELPLINE_API_STYLE", "chat")
    model = Settings.from_env(tmp_path / ".env").build_model()
    assert isinstance(model, OpenAICompatModel)
    assert model.request_body([], None, None)["max_tokens"] == 4096


@pytest.mark.parametrize("value", ["lots", "0", "-5", "2.5"])
def test_an_unusable_output_limit_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    monkeypatch.setenv("HELPLINE_MAX_OUTPUT_TOKENS", value)
    with pytest.raises(ConfigError, match=r"HELPLINE_MAX_OUTPUT_TOKENS is .*whole number"):
        Settings.from_env(tmp_path / ".env")
