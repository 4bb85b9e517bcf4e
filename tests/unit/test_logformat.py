"""The log line format (gateway.observe.logformat) and the request id rule (requestid.accept)."""

from __future__ import annotations

import json
import logging
import os
import re

import pytest

from gateway import logs
from gateway.observe import logformat
from gateway.observe.context import SCOPE, RequestScope
from gateway.observe.requestid import MAX_LENGTH, accept

pytestmark = pytest.mark.unit


def _record(msg, *args, name="gateway.runtime.webhook", level=logging.INFO, created=1795320098.1234):
    record = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    record.created = created
    return record


def _in_request(fn, scope):
    token = SCOPE.set(scope)
    try:
        return fn()
    finally:
        SCOPE.reset(token)


def test_a_json_line_starts_with_ts_level_pid_logger_then_the_request_then_the_event():
    record = _record(logs.Fields({"event": "webhook", "provider": "sandbox", "operation": "balance", "status": 200,
                                  "card": "****1111"}))
    line = _in_request(lambda: logformat.JsonFormatter().format(record),
                       RequestScope("req-1", provider="sandbox", operation="balance"))
    out = json.loads(line)
    assert list(out) == ["ts", "level", "pid", "logger", "event", "request_id", "provider", "operation", "status", "card"]
    assert out["ts"] == "2026-11-22T04:01:38.123Z" and out["level"] == "info" and out["pid"] == os.getpid()
    assert (out["logger"], out["request_id"], out["status"]) == ("gateway.runtime.webhook", "req-1", 200)


def test_free_text_is_msg_and_outside_a_request_has_no_request_fields():
    out = json.loads(logformat.JsonFormatter().format(_record("purged %d expired records", 3, level=logging.WARNING)))
    assert out["msg"] == "purged 3 expired records" and out["level"] == "warning" and "request_id" not in out


def test_uvicorns_access_line_is_taken_apart():
    record = _record('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "POST", "/sandbox/gift_card/balance", "1.1", 200,
                     name="uvicorn.access")
    out = json.loads(logformat.JsonFormatter().format(record))
    assert (out["event"], out["method"], out["path"], out["status"], out["client"]) == (
        "access", "POST", "/sandbox/gift_card/balance", 200, "127.0.0.1:5000")


def test_every_line_masks_digit_runs_in_both_formats():
    record = _record("card %s slipped into a message", "6006 4911 1111 1111")
    for formatter in (logformat.JsonFormatter(), logformat.TextFormatter()):
        line = formatter.format(record)
        assert "6006" not in line.replace("2026", "") and "****1111" in line


def test_an_exception_stays_on_the_line():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("gateway", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info())
    assert "ValueError: boom" in json.loads(logformat.JsonFormatter().format(record))["exception"]
    assert "\n" not in logformat.TextFormatter().format(record)


def test_the_text_line():
    record = _record(logs.Fields({"event": "webhook", "provider": "sandbox", "operation": "balance", "status": 200,
                                  "message": "a b"}))
    line = _in_request(lambda: logformat.TextFormatter().format(record), RequestScope("r1", "sandbox", "balance"))
    assert line == ('2026-11-22T04:01:38.123Z INFO    gateway.runtime.webhook [r1 sandbox/balance] webhook '
                    'status=200 message="a b"')


def test_a_webhook_line_leaves_out_null_fields(caplog):
    caplog.set_level(logging.INFO)
    logs.webhook(provider="p", operation="issue", card=None, status=200)
    [record] = caplog.records
    assert json.loads(record.getMessage()) == {"event": "webhook", "provider": "p", "operation": "issue", "status": 200}


@pytest.mark.parametrize("received, kept", [
    ("abc-123", True), ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True), ("~!x", True),
    ("x" * MAX_LENGTH, True), ("x" * (MAX_LENGTH + 1), False), ("", False), ("a b", False), ("a\tb", False),
    ("tab\x7f", False), ("caf\u00e9", False),
])
def test_which_request_ids_are_kept(received, kept):
    request_id, why = accept(received)
    assert (request_id == received) is kept and (why is None) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)


def test_no_request_id_gets_a_fresh_one_without_a_warning():
    first, why = accept(None)
    assert why is None and re.fullmatch(r"[0-9a-f]{32}", first) and accept(None)[0] != first


def test_uvicorn_log_config_is_accepted_by_dictconfig():
    import logging.config

    saved = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        logging.config.dictConfig(logformat.uvicorn_config("info", "text"))
        [handler] = logging.getLogger().handlers
        assert isinstance(handler.formatter, logformat.TextFormatter)
        assert logging.getLogger("uvicorn.error").propagate and not logging.getLogger("uvicorn.access").handlers
    finally:
        logging.getLogger().handlers[:] = saved[0]
        logging.getLogger().setLevel(saved[1])


def _configured(level="INFO"):
    """The gateway's logging, writing into a string; restored by the caller (``_restore``)."""
    import io

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logformat.configure(level, "json")
    stream = io.StringIO()
    root.handlers[0].setStream(stream)
    return stream, saved


def _restore(saved):
    root = logging.getLogger()
    root.handlers[:], level = saved
    root.setLevel(level)
    logs.write_directly(None)


def test_the_webhook_line_written_directly_is_the_handlers_line_byte_for_byte(monkeypatch):
    fields = {"request_id": "req-9", "provider": "sandbox", "operation": "balance", "card": "****1111",
              "outcome": "ok", "status": 200, "calls": 1, "duration_ms": 1.4,
              "message": "card 6006 4911 1111 1111 refused"}
    monkeypatch.setattr(logformat.time, "time", lambda: 1795320098.1234)
    stream, saved = _configured()
    try:
        scope = RequestScope("req-9", provider="sandbox", operation="balance")
        _in_request(lambda: logs.webhook(**fields), scope)
        direct = stream.getvalue()
        logs.write_directly(None)  # the same call through the logging machinery
        record = _record(logs.Fields({"event": "webhook", **fields}))
        through_handler = _in_request(lambda: logformat.JsonFormatter().format(record), scope) + "\n"
    finally:
        _restore(saved)
    assert direct == through_handler
    assert "6006" not in direct and "****1111 refused" in direct


def test_the_direct_line_steps_aside_for_any_other_handler_filter_or_level(caplog):
    stream, saved = _configured()
    try:
        root = logging.getLogger()
        root.addHandler(caplog.handler)  # a second handler on the root (pytest's): the record must reach it
        try:
            logs.webhook(provider="sandbox", operation="balance", status=200)
        finally:
            root.removeHandler(caplog.handler)
        assert [r.msg.fields["status"] for r in caplog.records if isinstance(r.msg, logs.Fields)] == [200]
        logging.getLogger("gateway.runtime.webhook").setLevel(logging.WARNING)
        try:
            logs.webhook(provider="sandbox", operation="balance", status=200)  # below the level: nothing
            logs.webhook(provider="sandbox", operation="balance", status=503)  # a warning: written
        finally:
            logging.getLogger("gateway.runtime.webhook").setLevel(logging.NOTSET)
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        # the first through the logging machinery (both handlers), the last directly
        assert [(line["level"], line["status"]) for line in lines] == [("info", 200), ("warning", 503)]
    finally:
        _restore(saved)


def test_ids_are_uuid4s_all_different_and_a_forked_worker_makes_its_own():
    import uuid

    from gateway.observe.context import new_id

    ids = [new_id() for _ in range(1000)]  # several reads of the random source
    assert len(set(ids)) == 1000
    assert all(uuid.UUID(hex=i).version == 4 and uuid.UUID(hex=i).variant == uuid.RFC_4122 for i in ids)
    new_id()  # the parent holds unread random bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, written back to the parent
        os.close(read)
        os.write(write, "".join(new_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = "".join(new_id() for _ in range(5))
    assert len(child) == 160 and child != parent


def test_the_direct_line_to_a_file_is_the_handlers_line_and_a_forked_worker_writes_its_own_pid(tmp_path, monkeypatch):
    """A stream with a file descriptor (stderr, as served) gets the encoded line by one write()."""
    fields = {"request_id": "req-7", "provider": "caf\u00e9", "operation": "balance", "status": 200,
              "message": "6006 4911 1111 1111 and \u00fcml\u00e4ut"}
    monkeypatch.setattr(logformat.time, "time", lambda: 1795320098.1234)
    path = tmp_path / "stderr.log"
    stream_, saved = _configured()
    stream = open(path, "w", encoding="utf-8")  # noqa: SIM115
    logging.getLogger().handlers[0].setStream(stream)
    try:
        stream.write("partial line left in the buffer by someone else, ")  # written first, as the handler would
        logs.webhook(**fields)
        assert logs._direct is not None and logs._direct._fd == stream.fileno()  # written by os.write
        pid = os.fork()
        if pid == 0:
            try:
                logs.webhook(**{**fields, "request_id": "in-the-child"})
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
    finally:
        stream.close()
        _restore(saved)
    first, second = path.read_text(encoding="utf-8").splitlines()
    record = _record(logs.Fields({"event": "webhook", **fields}))
    want = logformat.JsonFormatter().format(record)
    assert first == "partial line left in the buffer by someone else, " + want
    assert "6006" not in first and "\u00fcml\u00e4ut" in first
    child = json.loads(second)
    assert child["request_id"] == "in-the-child" and child["pid"] == pid


def test_a_log_stream_that_fails_never_fails_the_webhook(capsys):
    """A full disk or a closed stream: the line is lost as logging loses it (its handler reports
    the failure on stderr), and the webhook that logged it goes on (it would have answered 500)."""

    class Full:
        encoding = "utf-8"

        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

    stream_, saved = _configured()
    logging.getLogger().handlers[0].setStream(Full())
    try:
        logs.webhook(provider="sandbox", operation="balance", status=200)  # must not raise
    finally:
        _restore(saved)
    assert "No space left on device" in capsys.readouterr().err  # logging's "--- Logging error ---"
