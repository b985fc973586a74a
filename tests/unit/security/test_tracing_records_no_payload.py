"""Tracing never records a handler's response or the exception it raised (they carry presigned label
links, masked views and, in an exception's arguments, whatever input it quotes)."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from parcelhub import observability


class RecordingSegment(BaseSegment):
    def __init__(self, recorded: list[tuple[str, Any]]) -> None:
        self.recorded = recorded

    def close(self, end_time: int | None = None) -> None: ...

    def add_subsegment(self, subsegment: Any) -> None: ...

    def remove_subsegment(self, subsegment: Any) -> None: ...

    def put_annotation(self, key: str, value: Any) -> None:
        self.recorded.append((key, value))

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        self.recorded.append((key, value))

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...


class RecordingProvider(BaseProvider):
    """A tracer provider that keeps every annotation and metadata value a handler's trace would carry."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, Any]] = []

    @contextlib.contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield RecordingSegment(self.recorded)

    in_subsegment_async = in_subsegment  # type: ignore[assignment]

    def put_annotation(self, key: str, value: Any) -> None:
        self.recorded.append((key, value))

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        self.recorded.append((key, value))

    def patch(self, modules: Any) -> None: ...

    def patch_all(self) -> None: ...


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProvider]:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")  # tracing is on only inside Lambda
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    recording = RecordingProvider()
    Tracer._reset_config()  # type: ignore[attr-defined,no-untyped-call]
    tracer = Tracer(service="parcelhub", provider=recording, auto_patch=False)
    monkeypatch.setattr(observability, "tracer", lambda: tracer)
    yield recording
    Tracer._reset_config()  # type: ignore[attr-defined,no-untyped-call]


class Context:
    function_name = "parcelhub-test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:parcelhub-test"
    aws_request_id = "req-1"


SECRET_LINK = "https://bucket.s3.amazonaws.com/labels/shp_1/SF1.pdf?X-Amz-Signature=abc123"
PHONE = "13912345678"


def test_a_handlers_response_is_not_recorded(provider: RecordingProvider) -> None:
    # Given a handler whose answer carries a presigned label link
    @observability.instrumented()
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": f'{{"label_url": "{SECRET_LINK}"}}'}

    # When it runs traced
    handler({}, Context())
    # Then the trace was written to (the handler ran under the recording provider) and holds no link
    assert provider.recorded
    assert SECRET_LINK not in repr(provider.recorded)


def test_an_exception_a_handler_raises_is_not_recorded(provider: RecordingProvider) -> None:
    # Given a handler failing with an error that quotes its input
    @observability.instrumented()
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise ValueError(f"bad receiver phone {PHONE}")

    # When it runs traced
    with pytest.raises(ValueError, match="bad receiver"):
        handler({}, Context())
    # Then the trace holds no part of the exception
    assert provider.recorded
    assert PHONE not in repr(provider.recorded)
