"""The moto process's speed-ups change how much work moto does per request, never what it answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.local import moto_process

pytestmark = pytest.mark.unit

DEFINITION = json.dumps(
    {
        "StartAt": "Choose",
        "States": {
            "Choose": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}],
                "Default": "Small",
            },
            "Big": {"Type": "Pass", "Result": {"size": "big"}, "End": True},
            "Small": {"Type": "Pass", "Parameters": {"size.$": "States.Format('small {}', $.n)"}, "End": True},
        },
    }
)


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The moto classes and module functions the patches replace, put back after the test."""
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)
    monkeypatch.setattr(
        DomainDispatcherApplication,
        "get_backend_for_host",
        DomainDispatcherApplication.__dict__["get_backend_for_host"],
    )
    monkeypatch.setattr(AmazonStateLanguageParser, "parse", AmazonStateLanguageParser.__dict__["parse"])
    return monkeypatch


def test_a_host_resolves_to_the_same_backend_without_listing_the_package_again(restored: Any) -> None:
    """Given moto's dispatcher, when hosts are resolved with the cached routing, then each host maps to the
    backend moto's own resolution gives, and moto's package directory is listed once, not per request."""
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    unbuilt: Any = lambda backend: None  # noqa: E731 - routing only: no app is built
    dispatcher = DomainDispatcherApplication(create_app=unbuilt)
    hosts = ["dynamodb.cn-north-1.amazonaws.com", "sqs.cn-north-1.amazonaws.com", "moto_api", "states.cn-north-1"]
    hosts += ["no-such-service.cn-north-1.amazonaws.com", "sns"]
    expected = {host: dispatcher.get_backend_for_host(host) for host in hosts}
    listed: list[int] = []
    original = backends.list_of_moto_modules

    def counting() -> Any:
        listed.append(1)
        return original()

    restored.setattr(backends, "list_of_moto_modules", counting)

    moto_process.route_requests_by_cached_host()
    for _ in range(3):
        assert {host: dispatcher.get_backend_for_host(host) for host in hosts} == expected
    assert len(listed) == 1
    assert expected["dynamodb.cn-north-1.amazonaws.com"] == "dynamodb"
    assert expected["sns"] == "sns"


def test_each_execution_gets_its_own_program_from_one_parse(restored: Any) -> None:
    """Given a definition, when it is parsed for three executions, then ANTLR parses it once, every
    execution gets fresh evaluation components of the same shape, and a broken definition still fails."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    parsed: list[str] = []
    original = AmazonStateLanguageParser.parse

    def counting(definition: str) -> Any:
        parsed.append(definition)
        return original(definition)

    restored.setattr(AmazonStateLanguageParser, "parse", staticmethod(counting))
    moto_process.parse_each_definition_once()

    programs: list[Any] = [AmazonStateLanguageParser.parse(DEFINITION)[0] for _ in range(3)]
    assert parsed == [DEFINITION]
    assert len({id(program) for program in programs}) == 3
    assert len({id(program.states) for program in programs}) == 3
    assert {type(program).__name__ for program in programs} == {type(original(DEFINITION)[0]).__name__}
    assert [sorted(p.states.states) for p in programs] == [["Big", "Choose", "Small"]] * 3
    for _ in range(2):
        with pytest.raises(ASLParserException):
            AmazonStateLanguageParser.parse('{"StartAt": "Nowhere", "States": {"X": {"Type": "Bogus"}}}')
