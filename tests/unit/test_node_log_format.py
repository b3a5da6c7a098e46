"""The node's log is one format: its own events and gRPC's Python log lines both come
out as JSON lines on the same stream, and a traceback's text never does."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from node.server import JSON_LOGGERS, configure_logging


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    saved = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level,
               logging.getLogger(name).propagate)
        for name in JSON_LOGGERS
    }  # fmt: skip
    stream = io.StringIO()
    configure_logging(stream)
    yield stream
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def test_grpc_and_node_lines_share_one_json_format(log_stream: io.StringIO) -> None:
    logging.getLogger("npcs.node.server").info("node serving", extra={"event": "serving"})
    try:
        raise ValueError("a value from a record: 1234")
    except ValueError:
        logging.getLogger("grpc._server").exception("Exception calling application")
    logging.getLogger("grpc._channel").debug("below gRPC's warning level: dropped")
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("npcs.node.server", "info"),
        ("grpc._server", "error"),
    ]
    assert lines[1]["msg"] == "Exception calling application"
    assert lines[1]["exc_type"] == "ValueError"
    assert "1234" not in log_stream.getvalue()
    assert {"ts", "level", "logger", "msg"} <= set(lines[1])
