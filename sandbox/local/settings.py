"""The local stack's configuration: environment variables, each with a documented default.

The table in ``sandbox/local/README.md`` is generated from :data:`VARIABLES` (keep them together).
Every default is a fake, obviously-local value: never a real-looking key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: name -> (default, what it does)
VARIABLES: dict[str, tuple[str, str]] = {
    "PARCELHUB_PORT": ("3000", "port of the local API (HTTP API v2.0 events); 0 = a free port"),
    "PARCELHUB_API_KEY": ("local-dev-key", "the OMS API key (its sha256 goes into the OMS secret's `api_keys`)"),
    "PARCELHUB_KDNIAO_EBUSINESS_ID": ("local-kdniao", "Kdniao EBusinessID (plugin and sandbox)"),
    "PARCELHUB_KDNIAO_APP_KEY": ("local-kdniao-app-key", "Kdniao AppKey (signs DataSign)"),
    "PARCELHUB_SF_PARTNER_ID": ("LOCAL_SF_PARTNER", "SF Fengqiao partnerID"),
    "PARCELHUB_SF_CHECKWORD": ("local-sf-checkword", "SF Fengqiao checkword (signs msgDigest)"),
    "PARCELHUB_SF_MONTHLY_CARD": ("7550000000", "SF monthly card number (月结卡号)"),
    "PARCELHUB_SF_PUSH_TOKEN": ("local-sf-push-token-0001", "secret path segment of the SF push webhook (>= 16 chars)"),
    "PARCELHUB_KUAIDI100_KEY": ("local-kuaidi100-key", "Kuaidi100 authorization key"),
    "PARCELHUB_KUAIDI100_CUSTOMER": ("LOCALCUSTOMER01", "Kuaidi100 customer id"),
    "PARCELHUB_KUAIDI100_SALT": ("local-kuaidi100-salt", "Kuaidi100 push signing salt (>= 8 chars)"),
    "PARCELHUB_KUAIDI100_SECRET": ("local-kuaidi100-secret", "Kuaidi100 label API secret (signs receipt queries)"),
    "PARCELHUB_TRACKING_LINK_SECRET": (
        "",
        "signs tracking-page links (the OMS secret's `tracking_link_secret`, >= 32 chars); unset: random per start",
    ),
    "PARCELHUB_LOCAL_DIR": ("var/", "where local-stack.json, alerts.jsonl and oms-callbacks.jsonl are written"),
    "PARCELHUB_TIME_SCALE": ("0.05", "SQS VisibilityTimeout multiplier (min 1 s): failed records reappear quickly"),
    "PARCELHUB_SCHEDULE_SCALE": ("0.01", "schedule interval multiplier: rate(15 minutes) fires every 9 s"),
    "PARCELHUB_BATCH_WINDOW_SCALE": (
        "1",
        (
            "SQS event sources' MaximumBatchingWindowInSeconds multiplier (tests that shorten a visibility "
            "timeout to seconds shorten the window with it); each source queue's visibility gets the window added"
        ),
    ),
    "PARCELHUB_SANDBOX_STAGE_SECONDS": ("2", "seconds between two lifecycle stages in the carrier sandboxes"),
    "PARCELHUB_LOCAL_CONCURRENCY": (
        "4",
        (
            "concurrent invocations of a function without ReservedConcurrentExecutions (one with it runs that "
            "many), like Lambda's environments; also the SQS pollers per event source (at most the reserved one)"
        ),
    ),
    "PARCELHUB_CARRIER_READ_TIMEOUT": (
        "",
        "read timeout (s) of the plugins' calls to the sandboxes, in the provider secrets (unset: the plugins' own)",
    ),
    "PARCELHUB_CONFIG": ("", "JSON deep-merged over the template's SSM config parameter value"),
    "PARCELHUB_CONFIG_FILE": ("", "a file holding that JSON (applied before PARCELHUB_CONFIG)"),
    "PARCELHUB_TEMPLATE": ("template.yaml", "the SAM template to run (tests use a fixture template)"),
    "PARCELHUB_PARAMETERS": ("", 'JSON object of template parameter overrides (e.g. {"Stage": "dev"})'),
}


def _get(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    return VARIABLES[name][0] if value is None or value == "" else value


@dataclass(frozen=True)
class Credentials:
    kdniao_ebusiness_id: str
    kdniao_app_key: str
    sf_partner_id: str
    sf_checkword: str
    sf_monthly_card: str
    sf_push_token: str
    kuaidi100_key: str
    kuaidi100_customer: str
    kuaidi100_salt: str
    kuaidi100_secret: str

    def for_provider(self, provider: str) -> dict[str, str]:
        """The provider's credential fields, named as its plugin settings and sandbox name them."""
        prefix = f"{provider}_"
        return {name[len(prefix) :]: value for name, value in self.__dict__.items() if name.startswith(prefix)}


@dataclass(frozen=True)
class LocalSettings:
    port: int
    api_key: str
    credentials: Credentials
    local_dir: Path
    time_scale: float
    schedule_scale: float
    sandbox_stage_seconds: float
    batch_window_scale: float
    concurrency: int
    config_overrides: dict[str, Any]
    template_path: Path
    parameter_overrides: dict[str, str]
    with_sandboxes: bool = True
    #: empty: the stack draws a random one when it starts (links then live as long as that stack)
    tracking_link_secret: str = ""
    carrier_read_timeout: float | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> LocalSettings:
        env = os.environ if env is None else env
        config: dict[str, Any] = {}
        config_file = _get(env, "PARCELHUB_CONFIG_FILE")
        if config_file:
            config = deep_merge(config, json.loads(Path(config_file).read_text(encoding="utf-8")))
        config_json = _get(env, "PARCELHUB_CONFIG")
        if config_json:
            config = deep_merge(config, json.loads(config_json))
        parameters_json = _get(env, "PARCELHUB_PARAMETERS")
        values: dict[str, Any] = {
            "port": int(_get(env, "PARCELHUB_PORT")),
            "api_key": _get(env, "PARCELHUB_API_KEY"),
            "tracking_link_secret": _get(env, "PARCELHUB_TRACKING_LINK_SECRET"),
            "credentials": Credentials(
                kdniao_ebusiness_id=_get(env, "PARCELHUB_KDNIAO_EBUSINESS_ID"),
                kdniao_app_key=_get(env, "PARCELHUB_KDNIAO_APP_KEY"),
                sf_partner_id=_get(env, "PARCELHUB_SF_PARTNER_ID"),
                sf_checkword=_get(env, "PARCELHUB_SF_CHECKWORD"),
                sf_monthly_card=_get(env, "PARCELHUB_SF_MONTHLY_CARD"),
                sf_push_token=_get(env, "PARCELHUB_SF_PUSH_TOKEN"),
                kuaidi100_key=_get(env, "PARCELHUB_KUAIDI100_KEY"),
                kuaidi100_customer=_get(env, "PARCELHUB_KUAIDI100_CUSTOMER"),
                kuaidi100_salt=_get(env, "PARCELHUB_KUAIDI100_SALT"),
                kuaidi100_secret=_get(env, "PARCELHUB_KUAIDI100_SECRET"),
            ),
            "local_dir": Path(_get(env, "PARCELHUB_LOCAL_DIR")),
            "time_scale": float(_get(env, "PARCELHUB_TIME_SCALE")),
            "schedule_scale": float(_get(env, "PARCELHUB_SCHEDULE_SCALE")),
            "batch_window_scale": float(_get(env, "PARCELHUB_BATCH_WINDOW_SCALE")),
            "sandbox_stage_seconds": float(_get(env, "PARCELHUB_SANDBOX_STAGE_SECONDS")),
            "concurrency": max(1, int(_get(env, "PARCELHUB_LOCAL_CONCURRENCY"))),
            "config_overrides": config,
            "template_path": Path(_get(env, "PARCELHUB_TEMPLATE")),
            "parameter_overrides": {str(k): str(v) for k, v in json.loads(parameters_json or "{}").items()},
            "carrier_read_timeout": float(env["PARCELHUB_CARRIER_READ_TIMEOUT"])
            if env.get("PARCELHUB_CARRIER_READ_TIMEOUT")
            else None,
        }
        values.update(overrides)
        return cls(**values)


def deep_merge(base: Any, override: Any) -> Any:
    """``override`` merged into ``base``: objects merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else value
        return merged
    return override


def variables_table() -> str:
    """The Markdown table of the environment variables (README)."""
    lines = ["| variable | default | what it does |", "|---|---|---|"]
    for name, (default, what) in VARIABLES.items():
        lines.append(f"| `{name}` | `{default}` | {what} |" if default else f"| `{name}` | (unset) | {what} |")
    return "\n".join(lines)
