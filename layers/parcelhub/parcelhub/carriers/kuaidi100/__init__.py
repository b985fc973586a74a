"""Kuaidi100 (快递100): a tracking aggregator — subscribe, real-time query, signed pushes.

Tracking only here: it does not issue e-waybills (``issues_waybills = False``). See REFERENCE.md §3.
"""

from parcelhub.carriers.kuaidi100.plugin import Kuaidi100Plugin
from parcelhub.carriers.kuaidi100.settings import Kuaidi100Settings

__all__ = ["Kuaidi100Plugin", "Kuaidi100Settings"]
