"""Generate the OMS API's OpenAPI document; ``--check`` fails when the committed copy drifted.

python -m parcelhub.api.openapi --write infra/openapi.json
python -m parcelhub.api.openapi --check infra/openapi.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from parcelhub import __version__
from parcelhub.api.app import API_TITLE, resolver


def document() -> str:
    schema = resolver().get_openapi_json_schema(
        title=API_TITLE,
        version=__version__,
        description="Hand orders to parcelhub, read shipments and timelines, cancel and retry waybills.",
        security_schemes={"apiKey": APIKey(name="x-api-key", in_=APIKeyIn.header)},
    )
    return json.dumps(json.loads(schema), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path)
    group.add_argument("--check", type=Path)
    args = parser.parse_args(argv)
    current = document()
    if args.write:
        args.write.write_text(current, encoding="utf-8")
        return 0
    committed = args.check.read_text(encoding="utf-8") if args.check.exists() else ""
    if committed != current:
        print(f"{args.check} is out of date: run `make openapi` and commit it", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
