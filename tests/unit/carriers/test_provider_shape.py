"""Every provider package has the same shape (docs/adding-a-provider.md): the same modules, the same
public names, capabilities declared rather than probed, and the lacking ones refused with a typed error."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from parcelhub.carriers import wire
from parcelhub.carriers.base import Capability, CapabilityNotSupported, CarrierRejected, ProviderPlugin
from parcelhub.carriers.codes import CodeTable
from parcelhub.carriers.http import FormClient
from parcelhub.carriers.registry import PLUGINS
from parcelhub.carriers.settings import ProviderSettings
from parcelhub.domain.models import Carrier, Provider, Waybill

pytestmark = pytest.mark.unit

MODULES = ("settings", "codes", "signing", "builders", "parsers", "client", "plugin")
#: capability -> (builder, parser, client method) that exist exactly when the provider has it
OPERATIONS = {
    Capability.ISSUE_WAYBILLS: ("build_create_request", "parse_create_response", "create"),
    Capability.CANCEL_WAYBILLS: ("build_cancel_request", "parse_cancel_response", "cancel"),
    Capability.FETCH_WAYBILLS: ("build_fetch_request", "parse_fetch_response", "fetch"),
    Capability.BOOK_PICKUP: ("build_pickup_request", "parse_pickup_response", "pickup"),
}
#: capability -> the client method that exists exactly when the provider has it (builder and parser
#: names differ per provider: Kdniao 2002 "recognise", Kuaidi100 "autonumber")
CLIENT_CALLS = {Capability.RECOGNISE_NUMBERS: ("recognise", "autonumber")}
PROVIDERS = sorted(PLUGINS, key=lambda p: p.value)


def module(provider: Provider, name: str) -> ModuleType:
    return importlib.import_module(f"parcelhub.carriers.{provider.value}.{name}")


def client_class(provider: Provider) -> type[FormClient]:
    found = [
        v
        for v in vars(module(provider, "client")).values()
        if isinstance(v, type) and issubclass(v, FormClient) and v is not FormClient
    ]
    assert len(found) == 1
    return found[0]


def plugin_class(provider: Provider) -> type:
    module_name, _, class_name = PLUGINS[provider].partition(":")
    cls: type = getattr(importlib.import_module(module_name), class_name)
    return cls


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_has_the_same_modules_and_names(provider: Provider) -> None:
    # Given a registered provider / Then its package has every module of the shape
    modules = {name: module(provider, name) for name in MODULES}
    assert PLUGINS[provider] == f"parcelhub.carriers.{provider.value}.plugin:{plugin_class(provider).__name__}"
    # And the names every provider shares
    codes, builders, parsers = modules["codes"], modules["builders"], modules["parsers"]
    assert provider.value == codes.PROVIDER
    assert isinstance(codes.TRACKING_CODES, CodeTable)
    assert callable(codes.classify_result)
    assert callable(builders.build_query_request)
    for name in ("parse_query_response", "verify_push", "parse_push", "push_reply"):
        assert callable(getattr(parsers, name)), name
    settings = [v for v in vars(modules["settings"]).values() if isinstance(v, type) and v is not ProviderSettings]
    assert any(issubclass(v, ProviderSettings) for v in settings)
    assert callable(client_class(provider).query)
    # And the per-provider copies of the shared wire helpers are gone (``wire`` holds them once)
    for name in MODULES:
        names = vars(modules[name])
        assert not {"to_json", "dumps", "_field", "_first", "_text", "mapper"} & names.keys(), name
        assert names.get("field", wire.field) is wire.field, name


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_operations_of_a_capability_exist_exactly_when_it_is_declared(provider: Provider) -> None:
    capabilities = plugin_class(provider).capabilities
    builders, parsers = module(provider, "builders"), module(provider, "parsers")
    client = client_class(provider)
    for capability, (builder, parser, call) in OPERATIONS.items():
        present = capability in capabilities
        assert hasattr(builders, builder) is present, (capability, builder)
        assert hasattr(parsers, parser) is present, (capability, parser)
        assert (call in vars(client)) is present, (capability, call)
    for capability, calls in CLIENT_CALLS.items():
        assert any(call in vars(client) for call in calls) is (capability in capabilities), capability


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_missing_capability_is_refused_with_a_typed_error(provider: Provider) -> None:
    # Given a plugin built without touching its settings or the network
    cls = plugin_class(provider)
    plugin = cls.__new__(cls)
    assert isinstance(plugin, ProviderPlugin)
    waybill = Waybill(provider=provider, carrier=Carrier.SF, tracking_number="SF1234567890123")
    calls = {
        Capability.ISSUE_WAYBILLS: lambda: plugin.create_waybill(None),
        Capability.CANCEL_WAYBILLS: lambda: plugin.cancel_waybill(waybill),
        Capability.FETCH_WAYBILLS: lambda: plugin.fetch_waybill("shp_1"),
        Capability.BOOK_PICKUP: lambda: plugin.book_pickup(None),
        Capability.RECOGNISE_NUMBERS: lambda: plugin.recognise_number("SF1234567890123"),
    }
    for capability, call in calls.items():
        if capability in cls.capabilities:
            continue
        # When the call is made / Then CapabilityNotSupported, a rejection with code UNSUPPORTED
        with pytest.raises(CapabilityNotSupported) as caught:
            call()
        assert caught.value.capability is capability
        assert isinstance(caught.value, CarrierRejected)
        assert caught.value.code == "UNSUPPORTED"
