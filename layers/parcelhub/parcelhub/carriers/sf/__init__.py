"""SF Express Fengqiao (顺丰丰桥) provider (REFERENCE §2): waybills, cancel, fetch, route query and push.

Modules: ``settings``, ``codes``, ``signing``, ``builders``, ``parsers``, ``client``, ``plugin`` (the
same in every provider, see ``docs/adding-a-provider.md``); the registry imports ``plugin`` lazily."""
