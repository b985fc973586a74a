"""``python -m sandbox.local`` (``make local``): the local stack in the foreground.

Configuration by environment - see ``sandbox/local/README.md``. Ctrl-C or SIGTERM stops everything.
"""

from __future__ import annotations

import logging
import os
import sys

from sandbox.local.stack import LocalStack, run_forever


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("PARCELHUB_LOCAL_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("werkzeug", "botocore", "urllib3", "moto"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return run_forever(LocalStack())


if __name__ == "__main__":
    sys.exit(main())
