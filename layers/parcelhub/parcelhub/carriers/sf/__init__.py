"""SF Express Fengqiao (顺丰丰桥) provider: settings, pure mapper, HTTP client, code tables, plugin.

Import the plugin from ``parcelhub.carriers.sf.plugin`` (the registry does it lazily)."""
