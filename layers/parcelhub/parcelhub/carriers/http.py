"""The one way plugins talk HTTP: a pooled ``requests`` session with connect/read timeouts, and
transport failures translated into the typed errors.

Retries: only *connect* failures are retried inside the client (the request never left, so even a
non-idempotent create is safe). Read timeouts and 5xx are not retried here: the caller (the waybill
workflow's Retry with backoff and jitter) decides, so a create is never silently sent twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from parcelhub.carriers.base import CarrierAuthError, CarrierUnavailable
from parcelhub.carriers.wire import FORM_CONTENT_TYPE

DEFAULT_TIMEOUT = (3.05, 10.0)
#: the error code of a call that never reached the provider (no connection): its outcome is certain.
#: Every other ``CarrierUnavailable`` of a create (read timeout, connection lost, 5xx) may have created the order.
CONNECT_FAILED = "CONNECT"


def _never_sent(error: requests.ConnectionError) -> bool:
    """The connection was never made (refused, no route, DNS): nothing reached the provider."""
    from urllib3.exceptions import NewConnectionError

    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, NewConnectionError | ConnectionRefusedError):
            return True
        reason = getattr(cause, "reason", None)
        cause = reason if isinstance(reason, BaseException) else cause.__context__
    return False


def new_session(pool_size: int = 10) -> requests.Session:
    from parcelhub.observability import trace_requests

    trace_requests()  # the carriers' calls are traced like the AWS SDK's
    session = requests.Session()
    # read=False: a read timeout is re-raised as such (the request may have reached the provider).
    retry = Retry(
        total=2, connect=2, read=False, status=0, other=0, redirect=0, backoff_factor=0.05, allowed_methods=None
    )
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def post_form(
    session: requests.Session,
    provider: str,
    url: str,
    form: Mapping[str, str],
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> requests.Response:
    """POST ``application/x-www-form-urlencoded`` (each value encoded exactly once) and classify the
    transport outcome. Returns the response for 2xx/4xx-other; raises for the rest."""
    return _classified(
        provider,
        url,
        lambda: session.post(url, data=dict(form), headers={"Content-Type": FORM_CONTENT_TYPE}, timeout=timeout),
    )


def _classified(provider: str, url: str, send: Callable[[], requests.Response]) -> requests.Response:
    try:
        response = send()
    except requests.ConnectTimeout as exc:
        raise CarrierUnavailable(provider, f"cannot connect to {url} (timeout)", CONNECT_FAILED) from exc
    except requests.Timeout as exc:
        raise CarrierUnavailable(provider, f"timeout calling {url}: {exc.__class__.__name__}", "TIMEOUT") from exc
    except requests.ConnectionError as exc:
        if _never_sent(exc):
            raise CarrierUnavailable(provider, f"cannot connect to {url}", CONNECT_FAILED) from exc
        raise CarrierUnavailable(provider, f"connection lost calling {url}", "CONNECTION") from exc
    if response.status_code == 429:
        raise CarrierUnavailable(provider, "rate limited (HTTP 429)", "HTTP_429")
    if response.status_code >= 500:
        raise CarrierUnavailable(provider, f"HTTP {response.status_code}", f"HTTP_{response.status_code}")
    if response.status_code in (401, 403):
        raise CarrierAuthError(provider, f"HTTP {response.status_code}", f"HTTP_{response.status_code}")
    return response


def json_body(provider: str, response: requests.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError as exc:
        reason = f"unreadable response (HTTP {response.status_code})"
        raise CarrierUnavailable(provider, reason, "BAD_RESPONSE") from exc
    if not isinstance(body, dict):
        raise CarrierUnavailable(provider, "response is not a JSON object", "BAD_RESPONSE")
    return body


class FormClient:
    """What every provider's ``client`` is: one pooled session posting forms to the provider and
    returning the JSON answer. A provider's client adds one method per HTTP call (``create``,
    ``cancel``, ``fetch``, ``subscribe``, ``query``), each naming its endpoint; nothing else."""

    def __init__(
        self,
        provider: str,
        timeout: tuple[float, float],
        session: requests.Session | None = None,
        pool_size: int = 10,
    ) -> None:
        self.provider = provider
        self.timeout = timeout
        self.session = session if session is not None else new_session(pool_size)

    def post(self, url: str, form: Mapping[str, str]) -> dict[str, Any]:
        """POST the form; the decoded JSON object (business errors are the parsers')."""
        return json_body(self.provider, post_form(self.session, self.provider, url, form, timeout=self.timeout))

    def get(self, url: str, params: Mapping[str, str]) -> Any:
        """GET with query parameters; the decoded JSON, whatever its type (an array for some answers)."""
        response = _classified(
            self.provider, url, lambda: self.session.get(url, params=dict(params), timeout=self.timeout)
        )
        try:
            return response.json()
        except ValueError as exc:
            reason = f"unreadable response (HTTP {response.status_code})"
            raise CarrierUnavailable(self.provider, reason, "BAD_RESPONSE") from exc

    def close(self) -> None:
        self.session.close()
