"""OMS API entry point: Powertools decorators plus one call into the resolver."""

from __future__ import annotations

from typing import Any

from parcelhub.api.app import handle
from parcelhub.observability import instrumented


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context)
