"""Kdniao (快递鸟): settings, pure mapper, HTTP client, code table and the plugin (REFERENCE §1)."""

from parcelhub.carriers.kdniao.plugin import KdniaoPlugin
from parcelhub.carriers.kdniao.settings import KdniaoAccount, KdniaoSettings

__all__ = ["KdniaoAccount", "KdniaoPlugin", "KdniaoSettings"]
