"""The server's configuration: one home, read from QIAO_* environment variables or `.env`.

`ServiceSettings` extends the library's `IndexSettings` (data dir, model, chunking) with what
only the HTTP service needs: where to listen, who may write, CORS and request limits. Settings
are read when the app is created (`load_settings`), never at import time.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from index import MAX_LOOKUP_CHARS, IndexSettings, settings_error

# Hard ceilings of the API contract (also in the OpenAPI schema); settings may only lower them.
QUERY_MAX_CHARS = 2000
# A lookup takes a sentence or a passage (the library's own limit).
LOOKUP_MAX_CHARS = MAX_LOOKUP_CHARS
K_MAX = 100  # the library's own limit (index.retriever.MAX_K)
LIST_MAX_LIMIT = 1000


def _machine_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class ServiceSettings(IndexSettings):
    """Everything `create_app` needs. Defaults work out of the box on a laptop: loopback only,
    no token, writes allowed because nobody else can reach the port."""

    model_config = SettingsConfigDict(env_prefix="QIAO_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_token: SecretStr | None = None
    require_token_for_reads: bool = False
    # Comma-separated ("https://a,https://b") or a JSON list; empty = no CORS headers at all.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    max_body_bytes: int = Field(default=32 * 2**20, ge=1024)
    max_query_chars: int = Field(default=QUERY_MAX_CHARS, ge=1, le=QUERY_MAX_CHARS)
    max_k: int = Field(default=K_MAX, ge=1, le=K_MAX)
    max_batch_docs: int = Field(default=1000, ge=1)
    max_file_bytes: int = Field(default=20 * 2**20, ge=1)  # per uploaded file, like `qiao ingest`
    # Ingest requests waiting together are committed together, up to this many documents.
    ingest_group_docs: int = Field(default=256, ge=1)
    # Documents waiting for ingest beyond which `wait=false` jobs are refused (503, retry later).
    max_queued_docs: int = Field(default=10_000, ge=1)
    # How much lower the write thread's CPU priority is than the searches' (nice increment):
    # 10 keeps search latency under load, 0 shares the CPU equally and commits sooner.
    write_niceness: int = Field(default=10, ge=0, le=19)

    # Threads that run searches; more than the cores only adds contention.
    search_threads: int = Field(default_factory=_machine_threads, ge=1)
    # Threads each model call may use (OMP_NUM_THREADS, set by `qiao serve`). Searches already
    # run in parallel, so one each keeps them from fighting over the cores: on 2 cores with
    # another busy process, 2 per call made HTTP searches ~15× slower (scripts/bench_http.py).
    torch_threads: int = Field(default=1, ge=1)
    # How often to pick up a generation committed by another process (`qiao ingest`); 0 = never.
    reload_seconds: float = Field(default=2.0, ge=0)
    log_queries: bool = False  # query text in INFO log lines (off: it may be sensitive)

    # An OpenAI-compatible chat endpoint for generated answers (/v1/answer); unset = extractive.
    llm_base_url: str | None = Field(default=None, examples=["http://127.0.0.1:11434/v1"])
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("api_token", mode="after")
    @classmethod
    def _blank_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        # QIAO_API_TOKEN= (empty) must not become a token that an empty header would match.
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @field_validator("llm_base_url", "llm_model", mode="after")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @model_validator(mode="after")
    def _llm_needs_url_and_model(self) -> Self:
        if (self.llm_base_url is None) != (self.llm_model is None):
            raise ValueError("set both QIAO_LLM_BASE_URL and QIAO_LLM_MODEL, or neither")
        if self.llm_base_url is not None and not self.llm_base_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(f"QIAO_LLM_BASE_URL must start with http:// or https://, got "
                             f"{self.llm_base_url!r}")
        return self

    @property
    def llm_configured(self) -> bool:
        """True when answers are generated by the configured LLM."""
        return self.llm_base_url is not None and self.llm_model is not None

    @model_validator(mode="after")
    def _reads_need_a_token(self) -> Self:
        if self.require_token_for_reads and self.api_token is None:
            raise ValueError(
                "QIAO_REQUIRE_TOKEN_FOR_READS is set but QIAO_API_TOKEN is not: set a token"
            )
        return self

    @property
    def loopback_only(self) -> bool:
        """True when the server listens on a loopback address only (no other host can connect)."""
        return is_loopback(self.host)

    def index_settings(self) -> IndexSettings:
        """The library's part of these settings."""
        return IndexSettings(**{name: getattr(self, name) for name in IndexSettings.model_fields})


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def load_settings(
    *, host: str | None = None, port: int | None = None, data_dir: Path | None = None
) -> ServiceSettings:
    """Settings from the environment/`.env`, with command-line overrides on top.

    Raises QiaoError with a one-line message naming the bad variable.
    """
    overrides: dict[str, Any] = {
        key: value
        for key, value in (("host", host), ("port", port), ("data_dir", data_dir))
        if value is not None
    }
    try:
        return ServiceSettings(**overrides)
    except ValidationError as exc:
        raise settings_error(exc) from None
