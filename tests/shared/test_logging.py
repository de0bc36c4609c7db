import json
import logging

from owr_shared.context import request_id_var, trace_id_var
from owr_shared.logging import configure_logging, get_logger, redact_text


def test_redact_text_patterns():
    text = "key sk-or-v1-0123456789abcdef token owr_abcdefghijklmnopqrstuvwxyz Bearer abc.def.ghi"
    redacted = redact_text(text)
    assert "sk-or-v1-0123456789abcdef" not in redacted
    assert "owr_abcdefghijklmnopqrstuvwxyz" not in redacted
    assert "abc.def.ghi" not in redacted
    assert redacted.count("***") == 3


def test_log_lines_are_json_with_context_and_redacted(capsys):
    configure_logging("svc-test", "INFO", json=True)
    rid = request_id_var.set("req-123")
    tid = trace_id_var.set("0af7651916cd43dd8448eb211c80319c")
    try:
        get_logger("t").info(
            "stored",
            password="hunter2-hunter2",
            detail="got sk-or-v1-deadbeefdeadbeef0000",
            nested={"token": "x"},
        )
        logging.getLogger("uvicorn.error").warning("Authorization: Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.sig")
    finally:
        request_id_var.reset(rid)
        trace_id_var.reset(tid)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    first, second = lines[-2], lines[-1]
    assert first["service"] == "svc-test"
    assert first["request_id"] == "req-123"
    assert first["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert first["password"] == "***"
    assert first["nested"] == {"token": "***"}
    assert "sk-or-v1-deadbeef" not in json.dumps(first)
    assert "eyJhbGciOiJFZERTQSJ9" not in json.dumps(second)
    assert second["level"] == "warning"
