"""The provider registry: adding a provider is one folder plus one line here.

Plugins are imported lazily (by dotted path) so a function only pays the import cost of the
providers it actually talks to.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from parcelhub.carriers.base import ProviderPlugin
from parcelhub.carriers.settings import split_config
from parcelhub.config import SecretPart
from parcelhub.domain.models import Provider

#: provider -> "module:Class" of its plugin. One line per provider.
PLUGINS: dict[Provider, str] = {
    Provider.KDNIAO: "parcelhub.carriers.kdniao.plugin:KdniaoPlugin",
    Provider.SF: "parcelhub.carriers.sf.plugin:SfPlugin",
    Provider.KUAIDI100: "parcelhub.carriers.kuaidi100.plugin:Kuaidi100Plugin",
}


def plugin_class(provider: Provider | str) -> type[Any]:
    try:
        target = PLUGINS[Provider(provider)]
    except (KeyError, ValueError):
        raise KeyError(f"unknown provider {provider!r}; known: {', '.join(p.value for p in PLUGINS)}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def build_plugin(provider: Provider | str, config: Mapping[str, Any]) -> ProviderPlugin:
    """Build a plugin from its configuration mapping (validated by the plugin's own Settings)."""
    plugin: ProviderPlugin = plugin_class(provider).from_config(config)
    return plugin


def split_provider_config(provider: Provider | str, config: Mapping[str, Any]) -> dict[SecretPart, dict[str, Any]]:
    """A provider's whole configuration as its API secret and its push secret (see ``split_config``)."""
    return split_config(plugin_class(provider).settings_type, config)
