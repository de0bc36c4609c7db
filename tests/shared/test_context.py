from owr_shared.context import new_traceparent, parse_traceparent, sanitize_request_id


def test_traceparent_parsing():
    assert parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
    )
    assert parse_traceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01") is None
    assert parse_traceparent("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") is None
    assert parse_traceparent("garbage") is None
    assert parse_traceparent(None) is None


def test_new_traceparent_continues_trace():
    tp = new_traceparent("0af7651916cd43dd8448eb211c80319c")
    parsed = parse_traceparent(tp)
    assert parsed is not None
    assert parsed[0] == "0af7651916cd43dd8448eb211c80319c"
    assert parse_traceparent(new_traceparent()) is not None


def test_request_id_sanitising():
    assert sanitize_request_id("abc-123") == "abc-123"
    generated = sanitize_request_id("bad id\r\nInjected: yes")
    assert "\n" not in generated
    assert len(generated) == 32
    assert sanitize_request_id("x" * 200) != "x" * 200
