"""A client for an OpenAI-compatible `POST {base_url}/chat/completions` (vLLM, Ollama, gateways).

`ChatModel` is the library's `LanguageModel`: `complete` returns the whole answer (blocking: run
it off the event loop). `open_stream` sends a streaming request, checks the status, and returns a
`ChatStream` whose `deltas()` yield the text as it arrives (server-sent events, `data: {json}`
lines ending with `data: [DONE]`). Opening first lets the caller turn an upstream failure into an
HTTP error before it has started a streamed response.

Every failure is an `LlmError` with a one-line message: `LlmTimeout` when the endpoint does not
answer in time, `LlmUpstreamError` for connection failures, error statuses and malformed replies.
The API key is sent as a bearer token and never appears in messages or logs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from index import LlmError, LlmTimeout, LlmUpstreamError
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class LlmConfig:
    base_url: str  # e.g. "http://127.0.0.1:11434/v1"; "/chat/completions" is appended
    model: str
    api_key: str | None = None
    timeout_seconds: float = 30.0

    @property
    def endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


def llm_config(settings: ServiceSettings) -> LlmConfig | None:
    """The configured LLM endpoint (QIAO_LLM_*), or None when answers are extractive."""
    if settings.llm_base_url is None or settings.llm_model is None:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return LlmConfig(settings.llm_base_url, settings.llm_model, key, settings.llm_timeout_seconds)


def chat_model(settings: ServiceSettings) -> ChatModel | None:
    """The configured LLM as a `LanguageModel`, or None."""
    config = llm_config(settings)
    return None if config is None else ChatModel(config)


def _headers(config: LlmConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    return headers


def _body(config: LlmConfig, messages: Sequence[Message], stream: bool) -> dict[str, Any]:
    # Low temperature: the answer should restate the passages, not improvise.
    return {"model": config.model, "messages": list(messages), "temperature": 0.1,
            "stream": stream}


def _status_error(config: LlmConfig, status: int, body: str) -> LlmUpstreamError:
    detail = " ".join(body.split())[:200]
    return LlmUpstreamError(
        f"the LLM at {config.endpoint} answered HTTP {status}" + (f": {detail}" if detail else "")
    )


def _transport_error(config: LlmConfig, exc: httpx.HTTPError) -> LlmError:
    if isinstance(exc, httpx.TimeoutException):
        return LlmTimeout(
            f"the LLM at {config.endpoint} did not answer within {config.timeout_seconds:g} s "
            "(QIAO_LLM_TIMEOUT_SECONDS)"
        )
    return LlmUpstreamError(f"cannot reach the LLM at {config.endpoint}: {type(exc).__name__}")


def _timeout(config: LlmConfig) -> httpx.Timeout:
    return httpx.Timeout(config.timeout_seconds)


class ChatModel:
    """An OpenAI-compatible chat endpoint as the library's `LanguageModel` (blocking calls)."""

    def __init__(self, config: LlmConfig) -> None:
        self._config = config

    @property
    def name(self) -> str:
        return self._config.model

    def complete(self, messages: Sequence[Message]) -> str:
        """The assistant's reply to `messages`; LlmError (one line) when there is none."""
        config = self._config
        try:
            with httpx.Client(timeout=_timeout(config)) as client:
                response = client.post(
                    config.endpoint, json=_body(config, messages, False), headers=_headers(config)
                )
        except httpx.HTTPError as exc:
            raise _transport_error(config, exc) from None
        if response.status_code != 200:
            raise _status_error(config, response.status_code, response.text)
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LlmUpstreamError(
                f"the LLM at {config.endpoint} sent a reply without choices[0].message.content"
            ) from None
        if not isinstance(content, str):
            raise LlmUpstreamError(f"the LLM at {config.endpoint} sent a non-text message content")
        return content


class ChatStream:
    """An open streamed reply. Iterate `deltas()` once; `aclose()` always (also after errors)."""

    def __init__(self, config: LlmConfig, client: httpx.AsyncClient,
                 response: httpx.Response) -> None:
        self._config = config
        self._client = client
        self._response = response

    async def deltas(self) -> AsyncIterator[str]:
        """The reply's text pieces as they arrive. Raises LlmError on timeout or bad data; each
        wait for the next line is bounded by the timeout."""
        try:
            async for line in self._response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # comments (": keep-alive"), event names, blank separators
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    return
                piece = self._piece_of(data)
                if piece:
                    yield piece
        except httpx.HTTPError as exc:
            raise _transport_error(self._config, exc) from None

    def _piece_of(self, data: str) -> str:
        try:
            event = json.loads(data)
            if "error" in event:
                raise LlmUpstreamError(
                    f"the LLM at {self._config.endpoint} reported an error mid-stream: "
                    + " ".join(str(event["error"]).split())[:200]
                )
            choices = event.get("choices") or []
            if not choices:
                return ""  # e.g. a final usage-only event
            content = (choices[0].get("delta") or {}).get("content")
        except (ValueError, AttributeError, TypeError):
            raise LlmUpstreamError(
                f"the LLM at {self._config.endpoint} sent a stream event that is not "
                "chat-completion JSON"
            ) from None
        return content if isinstance(content, str) else ""

    async def aclose(self) -> None:
        await self._response.aclose()
        await self._client.aclose()


async def open_stream(config: LlmConfig, messages: Sequence[Message]) -> ChatStream:
    """Send a streaming request and wait for the response headers; raise LlmError if it fails."""
    client = httpx.AsyncClient(timeout=_timeout(config))
    try:
        request = client.build_request(
            "POST", config.endpoint, json=_body(config, messages, True), headers=_headers(config)
        )
        with anyio.fail_after(config.timeout_seconds):
            response = await client.send(request, stream=True)
    except TimeoutError:
        await client.aclose()
        raise _transport_error(config, httpx.ReadTimeout("overall timeout")) from None
    except httpx.HTTPError as exc:
        await client.aclose()
        raise _transport_error(config, exc) from None
    except BaseException:  # cancelled: do not leak the connection pool
        await client.aclose()
        raise
    if response.status_code != 200:
        body = (await response.aread()).decode("utf-8", "replace")
        await response.aclose()
        await client.aclose()
        raise _status_error(config, response.status_code, body)
    return ChatStream(config, client, response)
