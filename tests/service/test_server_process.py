"""`qiao serve` as a real process on a free loopback port: start-up, requests, clean shutdown,
and the one-line errors it exits with."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from qiao.cli import app as cli_app
from tests.conftest import TINY
from tests.service.conftest import quote_id

START_TIMEOUT = 300.0  # loading torch and the model on a busy 2-core machine


def qiao_command() -> list[str]:
    script = Path(sys.executable).parent / "qiao"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from qiao.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment minus QIAO_* settings that would change the outcome; the model
    configuration (QIAO_MODEL, QIAO_MODEL_DIR) is kept so the prepared model is found."""
    keep = {"QIAO_MODEL", "QIAO_MODEL_DIR"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIAO_") or k in keep}
    return {**env, "QIAO_DATA_DIR": str(data_dir), **extra}


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


StartServer = Callable[[dict[str, str]], Server]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """`start_server(env)` runs `qiao serve` on a free loopback port; killed at teardown."""
    started: list[Server] = []

    def start(env: dict[str, str]) -> Server:
        port = free_port()
        log = tmp_path / f"server-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*qiao_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
            )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def wait_ready(server: Server) -> httpx.Response:
    """Poll /readyz until 200; fail at once if the process exits."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"server exited with {server.process.returncode}:\n{server.output()}")
        try:
            response = httpx.get(f"{server.base}/readyz", timeout=5)
            if response.status_code == 200:
                return response
            assert response.status_code == 503, response.text
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.05)
    pytest.fail(f"not ready after {START_TIMEOUT} s:\n{server.output()}")


@pytest.mark.model
def test_real_server_searches_ingests_deletes_and_stops_cleanly(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server(server_env(tmp_path / "data"))
    ready = wait_ready(server).json()
    assert ready["documents"] == 0 and ready["dim"] > 0
    with httpx.Client(base_url=server.base, timeout=60) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        files = [("files", (p.name, p.read_bytes())) for p in sorted(TINY.iterdir())]
        ingest = http.post("/v1/documents:upload", files=files)
        assert ingest.status_code == 200, ingest.text
        assert len(ingest.json()["added"]) == 5 and ingest.json()["rejected"] == []

        en = http.post("/v1/search", json={"query": "Who removes plastic waste from the lake?",
                                           "k": 3, "lang": "en"}).json()
        top = en["results"][0]
        assert top["doc_id"] == "river-cleanup.en" and en["query_lang"] == "en"
        zh = http.get("/v1/search", params={"q": "地铁多久一班？", "k": 3, "lang": "zh"}).json()
        assert zh["results"][0]["doc_id"] == "metro-line.zh" and zh["query_lang"] == "zh"
        for hit in (top, zh["results"][0]):
            doc = http.get(f"/v1/documents/{quote_id(hit['doc_id'])}").json()
            assert doc["text"][hit["start"] : hit["end"]] == hit["text"]
            cp = hit["counterpart"]
            assert cp is not None
            other = http.get(f"/v1/documents/{quote_id(cp['doc_id'])}").json()
            assert other["text"][cp["start"] : cp["end"]] == cp["text"]

        assert http.delete("/v1/documents/metro-line.zh").json() == {"deleted": ["metro-line.zh"]}
        after = http.get("/v1/search", params={"q": "地铁多久一班？", "k": 10, "lang": "zh"}).json()
        assert all(h["doc_id"] != "metro-line.zh" for h in after["results"])
        assert http.get("/readyz").json()["documents"] == 4
        assert 'route="/v1/search"' in http.get("/metrics").text

    server.process.send_signal(signal.SIGTERM)
    # A graceful stop is a clean exit, not a death by signal.
    assert server.process.wait(timeout=60) == 0, server.output()
    output = server.output()
    assert "Application shutdown complete" in output and "Finished server process" in output
    assert "Traceback" not in output and "ERROR" not in output
    assert "地铁" not in output  # query text stays out of the log by default


def test_serve_exits_1_with_one_line_when_the_model_cannot_load(
    start_server: StartServer, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model"
    server = start_server(server_env(tmp_path / "data", QIAO_MODEL=str(missing)))
    assert server.process.wait(timeout=120) == 1
    output = server.output()
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no-such-model" in errors[0]
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"QIAO_PORT": "eighty"}, "QIAO_PORT"),
        ({"QIAO_REQUIRE_TOKEN_FOR_READS": "true"}, "QIAO_API_TOKEN"),
        ({"QIAO_MAX_K": "500"}, "QIAO_MAX_K"),
    ],
)
def test_serve_refuses_bad_settings_before_starting(
    tmp_path: Path, env: dict[str, str], fragment: str
) -> None:
    result = CliRunner().invoke(cli_app, ["serve"], env=server_env(tmp_path / "data", **env))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert fragment in result.stderr


def test_serve_refuses_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = CliRunner().invoke(cli_app, ["serve", "--data-dir", str(not_a_dir)],
                                env=server_env(tmp_path / "data"))
    assert result.exit_code == 1 and "not a directory" in result.stderr


@pytest.mark.model
def test_an_accepted_job_survives_sigkill_and_commits_at_the_next_start(
    start_server: StartServer, tmp_path: Path
) -> None:
    """The 202 promise: once a job is accepted, killing the server cannot lose it."""
    env = server_env(tmp_path / "data")
    server = start_server(env)
    wait_ready(server)
    texts = [p.read_text(encoding="utf-8") for p in sorted(TINY.glob("*.en.txt"))]
    documents = [{"doc_id": f"killed-{i}.en", "release_id": f"killed-{i}", "lang": "en",
                  "title": f"Killed {i}", "text": text} for i, text in enumerate(texts)]
    with httpx.Client(base_url=server.base, timeout=60) as http:
        accepted = http.post("/v1/documents?wait=false", json={"documents": documents})
        assert accepted.status_code == 202, accepted.text
        server.process.kill()  # at once: the commit (seconds of embedding) has not landed
    server.process.wait(timeout=30)

    restarted = start_server(env)
    wait_ready(restarted)
    with httpx.Client(base_url=restarted.base, timeout=60) as http:
        status_url = accepted.json()["status_url"]
        deadline = time.monotonic() + START_TIMEOUT
        while (job := http.get(status_url).json())["status"] == "queued":
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["status"] == "done", job
        assert sorted(job["result"]["added"]) == sorted(d["doc_id"] for d in documents)
        for document in documents:
            stored = http.get(f"/v1/documents/{document['doc_id']}").json()
            assert stored["text"] == document["text"]
