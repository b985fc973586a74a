"""``/v1/health``: liveness, no key needed, touches nothing."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from parcelhub import __version__
from parcelhub.api.views import Health

router = APIGatewayHttpRouter()


@router.get("/health", summary="Liveness", tags=["health"], security=[])
def health() -> Health:
    return Health(status="ok", version=__version__)
