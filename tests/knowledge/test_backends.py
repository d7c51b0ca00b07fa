"""The production backends: a Chroma server over HTTP, and an OpenAI-compatible embeddings endpoint."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from knowledge.embeddings import OpenAICompatibleEmbedder
from knowledge.index import build_index
from knowledge.retrieval import PlaybookSearch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "srv"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the Chroma server did not start within 30 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_index_and_search_work_against_a_chroma_server(settings, embedder, chroma_server):
    remote = replace(settings, chroma_url=chroma_server)
    report = build_index(remote, embedder)
    assert report.added == report.sections > 0
    assert build_index(remote, embedder).unchanged == report.sections  # incremental over HTTP too
    hits = PlaybookSearch(remote, embedder).search("逾期发票 催收")
    assert hits[0].doc == "collections"


class ScriptedEmbeddings(BaseHTTPRequestHandler):
    """POST /v1/embeddings: a vector per input from its length; the first call fails with 500."""

    calls: list[dict] = []
    fail_first = True

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        if type(self).fail_first:
            type(self).fail_first = False
            self._send(500, {"error": {"message": "try again", "type": "server_error"}})
            return
        data = [{"object": "embedding", "index": i, "embedding": [float(len(text)), 1.0, 0.0]}
                for i, text in enumerate(body["input"])]
        data.reverse()  # the client must put them back in input order
        self._send(200, {"object": "list", "data": data, "model": body["model"],
                         "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    def _send(self, status: int, payload: dict) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *_args):
        pass


def test_openai_compatible_embeddings_are_batched_ordered_normalised_and_retried():
    ScriptedEmbeddings.calls, ScriptedEmbeddings.fail_first = [], True
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedEmbeddings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        embedder = OpenAICompatibleEmbedder(base_url=f"http://127.0.0.1:{server.server_port}/v1",
                                            api_key="sk-test", model="bge-m3", batch=2)
        vectors = embedder.embed(["a", "bbb", "cc"])
    finally:
        server.shutdown()
    assert embedder.name == "openai:bge-m3"
    expected = np.array([[1, 1, 0], [3, 1, 0], [2, 1, 0]], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected)
    batches = [c["input"] for c in ScriptedEmbeddings.calls]
    assert batches == [["a", "bbb"], ["a", "bbb"], ["cc"]]  # the 500 was retried, then batches of 2
    assert all(c["path"] == "/v1/embeddings" and c["auth"] == "Bearer sk-test" and c["model"] == "bge-m3"
               for c in ScriptedEmbeddings.calls)
