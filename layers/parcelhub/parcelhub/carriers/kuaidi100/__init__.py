"""Kuaidi100 (快递100) provider (REFERENCE §3): a tracking aggregator — subscribe, real-time query, signed
pushes. It issues no e-waybills here (no ``Capability.ISSUE_WAYBILLS``).

Modules: ``settings``, ``codes``, ``signing``, ``builders``, ``parsers``, ``client``, ``plugin`` (the
same in every provider, see ``docs/adding-a-provider.md``); the registry imports ``plugin`` lazily."""
