"""The optional language model, against a stand-in chat-completions server on 127.0.0.1 started here."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mdn_course.assistant import ask
from mdn_course.assistant import llm
from mdn_course.assistant.retrieval import build_index

ANSWER_CELL = "def mdn_loss(pi, mu, sigma, z_next):\n    return STUDENT_SECRET_MARKER\n"


class StandIn:
    """A tiny OpenAI-compatible server whose reply the test chooses; it records every request."""

    def __init__(self):
        self.requests = []
        self.reply = (200, {"choices": [{"message": {"role": "assistant", "content": "A grounded answer."},
                                         "finish_reason": "stop"}]})
        self.delay = 0.0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stand_in.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                time.sleep(stand_in.delay)
                status, payload = stand_in.reply
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.closed = False
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def index():
    return build_index()


@pytest.fixture
def server(monkeypatch):
    s = StandIn()
    monkeypatch.setenv(llm.URL_ENV, s.url)
    monkeypatch.setenv(llm.MODEL_ENV, "stand-in-model")
    monkeypatch.setenv(llm.KEY_ENV, "sk-test")
    monkeypatch.setenv(llm.TIMEOUT_ENV, "2")
    yield s
    s.close()


QUESTION = "Why does the loss use logsumexp?"


def sent_text(request) -> str:
    return "\n".join(m["content"] for m in request["body"]["messages"])


def test_success_sends_question_and_retrieved_passages_only(server, index):
    answer = ask(QUESTION, index=index, answer_cell=None)
    assert answer.via == "llm" and answer.text == "A grounded answer."
    assert "stand-in-model" in answer.note and answer.sources
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["body"]["model"] == "stand-in-model"
    text = sent_text(request)
    assert QUESTION in text
    top = answer.sources[0]
    top_passages = [p for p in index.passages if (p.notebook, p.section) == (top.notebook, top.section)]
    assert any(p.text[:200] in text for p in top_passages)
    assert "STUDENT_SECRET_MARKER" not in text
    # Not the whole course: a small part of it.
    assert len(text) < 0.25 * sum(len(p.text) for p in index.passages)


def test_answer_cell_is_sent_only_on_opt_in(server, index):
    ask(QUESTION, index=index)
    ask(QUESTION, index=index, answer_cell=ANSWER_CELL)
    without, with_cell = (sent_text(r) for r in server.requests)
    assert "STUDENT_SECRET_MARKER" not in without
    assert "STUDENT_SECRET_MARKER" in with_cell


@pytest.mark.parametrize("reply, words", [
    ((500, {"error": "boom"}), "HTTP 500"),
    ((200, b"{not json"), "not a chat-completions answer"),
    ((200, {"unexpected": True}), "not a chat-completions answer"),
    ((200, {"choices": [{"message": {"role": "assistant", "content": None, "refusal": "I can't help with that."}}]}),
     "declined"),
    ((200, {"choices": [{"message": {"role": "assistant", "content": ""}, "finish_reason": "content_filter"}]}),
     "declined"),
    ((200, {"choices": [{"message": {"role": "assistant", "content": "   "}}]}), "empty answer"),
])
def test_failures_fall_back_to_the_offline_answer_with_a_note(server, index, reply, words, monkeypatch):
    server.reply = reply
    answer = ask(QUESTION, index=index)
    monkeypatch.delenv(llm.URL_ENV)
    offline = ask(QUESTION, index=index)
    assert answer.via == "offline" and words in answer.note and "course's own answer" in answer.note
    assert answer.text == offline.text and answer.sources == offline.sources
    assert "\n" not in answer.note


def test_timeout_falls_back(server, index, monkeypatch):
    monkeypatch.setenv(llm.TIMEOUT_ENV, "0.3")
    server.delay = 1.0
    answer = ask(QUESTION, index=index)
    assert answer.via == "offline" and "did not answer within 0.3 s" in answer.note


def test_unreachable_server_falls_back(server, index, monkeypatch):
    server.close()
    answer = ask(QUESTION, index=index)
    assert answer.via == "offline" and "cannot reach" in answer.note


def test_off_topic_is_refused_without_sending_anything(server, index):
    answer = ask("What is the capital of France?", index=index)
    assert not answer.on_topic and server.requests == []


def test_nothing_is_sent_unless_the_url_is_set(monkeypatch, index):
    monkeypatch.delenv(llm.URL_ENV, raising=False)
    assert llm.config() is None
    assert "nothing you type leaves this computer" in llm.privacy_line()
    assert ask(QUESTION, index=index).via == "offline"


def test_privacy_line_names_where_questions_go(server):
    line = llm.privacy_line()
    assert "127.0.0.1" in line and "answer cell is sent only if you tick" in line


def test_bad_configuration_is_named(monkeypatch):
    monkeypatch.setenv(llm.URL_ENV, "localhost:11434")
    with pytest.raises(ValueError, match="not an http"):
        llm.config()
    monkeypatch.setenv(llm.URL_ENV, "http://127.0.0.1:9/v1")
    monkeypatch.delenv(llm.MODEL_ENV, raising=False)
    with pytest.raises(ValueError, match=llm.MODEL_ENV):
        llm.config()
