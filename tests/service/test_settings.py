"""ServiceSettings: environment parsing, defaults, loopback detection, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.config import IndexSettings
from index.errors import QiaoError
from service.settings import ServiceSettings, is_loopback, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No QIAO_* from the developer's shell and no .env: tests set what they need."""
    import os

    for key in list(os.environ):
        if key.startswith("QIAO_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults_serve_loopback_without_token() -> None:
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.api_token is None and settings.loopback_only
    assert settings.max_query_chars == 2000 and settings.max_k == 100
    assert settings.cors_origins == [] and settings.search_threads >= 1


def test_environment_and_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QIAO_HOST", "0.0.0.0")
    monkeypatch.setenv("QIAO_PORT", "9000")
    monkeypatch.setenv("QIAO_API_TOKEN", "s3cret")
    monkeypatch.setenv("QIAO_CORS_ORIGINS", "https://a.intranet, https://b.intranet")
    monkeypatch.setenv("QIAO_DATA_DIR", str(tmp_path / "env-data"))
    settings = load_settings(port=9100)
    assert settings.host == "0.0.0.0" and not settings.loopback_only
    assert settings.port == 9100  # the command line wins over the environment
    assert settings.api_token is not None and settings.api_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.cors_origins == ["https://a.intranet", "https://b.intranet"]
    index = settings.index_settings()
    assert type(index) is IndexSettings and index.data_dir == tmp_path / "env-data"


def test_cors_origins_also_read_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QIAO_CORS_ORIGINS", '["https://a.intranet"]')
    assert load_settings().cors_origins == ["https://a.intranet"]


def test_blank_token_means_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QIAO_API_TOKEN", "  ")
    assert load_settings().api_token is None


def test_settings_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("QIAO_PORT=8123\nQIAO_MAX_BATCH_DOCS=7\n")
    settings = load_settings()
    assert settings.port == 8123 and settings.max_batch_docs == 7


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [("QIAO_PORT", "99999", "QIAO_PORT"), ("QIAO_MAX_QUERY_CHARS", "5000", "QIAO_MAX_QUERY_CHARS"),
     ("QIAO_REQUIRE_TOKEN_FOR_READS", "1", "QIAO_API_TOKEN")],
)
def test_bad_settings_raise_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(QiaoError, match=fragment) as caught:
        load_settings()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
     ("intranet-host", False)],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert ServiceSettings(_env_file=None, host=host).loopback_only is loopback  # type: ignore[call-arg]
