"""Kdniao (快递鸟) provider (REFERENCE §1): e-waybills for many carriers, tracking, signed pushes.

Modules: ``settings``, ``codes``, ``signing``, ``builders``, ``parsers``, ``client``, ``plugin`` (the
same in every provider, see ``docs/adding-a-provider.md``); the registry imports ``plugin`` lazily."""
