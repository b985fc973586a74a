"""Importing any module of the layer or of a function does nothing: no AWS client, no environment
read from our code, no connection (cold start stays cheap and tests need no set-up to import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]

PROBE = r"""
import importlib, json, os, pkgutil, socket, sys
from pathlib import Path

root = Path(sys.argv[1])
ours = (str(root / "layers"), str(root / "functions"))
env_reads, clients, connects = [], [], []

def caller_is_ours():
    # the first frame outside os / collections.abc is the code that asked for the variable
    frame = sys._getframe(2)  # 0: caller_is_ours, 1: recording_getitem, 2: who asked
    plumbing = ("os.py", "_collections_abc.py", "<frozen os>", "<frozen _collections_abc>")
    while frame is not None and frame.f_code.co_filename.endswith(plumbing):
        frame = frame.f_back
    name = frame.f_code.co_filename if frame is not None else ""
    return name if name.startswith(ours) else None

original_getitem = os._Environ.__getitem__
def recording_getitem(self, key):
    where = caller_is_ours()  # frame 1 is this function's caller
    if where:
        env_reads.append([key, where])
    return original_getitem(self, key)
os._Environ.__getitem__ = recording_getitem

original_connect = socket.socket.connect
def recording_connect(self, address):
    connects.append(str(address))
    raise OSError("no connections at import time")
socket.socket.connect = recording_connect

import botocore.session
original_create = botocore.session.Session.create_client
def recording_create(self, service_name, *args, **kwargs):
    clients.append(service_name)
    return original_create(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = recording_create

import parcelhub
modules = [m.name for m in pkgutil.walk_packages(parcelhub.__path__, "parcelhub.") if not m.name.endswith("__main__")]
for name in modules:
    importlib.import_module(name)
handlers = sorted(p.parent.name for p in (root / "functions").glob("*/handler.py"))
for name in handlers:
    importlib.import_module(f"functions.{name}.handler")
print(json.dumps({"modules": len(modules), "handlers": handlers, "env_reads": env_reads,
                  "clients": clients, "connects": connects}))
"""


def test_importing_every_module_has_no_side_effects() -> None:
    # Given an interpreter with no AWS configuration at all
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(dict.fromkeys(("TABLE_NAME", "EVENT_BUS_NAME", "OMS_SECRET_ARN", "SF_PUSH_SECRET_ARN"), "sentinel"))
    # When every module of the layer and every function handler is imported
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT)], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Then something was actually imported
    assert report["modules"] > 20
    assert "shipments_api" in report["handlers"]
    # And our code read no environment variable, created no client and opened no connection
    assert report["env_reads"] == []
    assert report["clients"] == []
    assert report["connects"] == []
