"""Debian packages the tests and the reliability suites need (PostgreSQL, Chromium), installed with
apt-get when missing: CI machines start without them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path


def installed(package: str, find: Callable[[], Path | None]) -> Path:
    """What ``find`` finds, after installing Debian's ``package`` if it finds nothing."""
    found = find()
    if found is None and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env, timeout=900)
        found = find()
    if found is None:
        raise RuntimeError(f"{package} is not installed and apt-get is not there to install Debian's {package}")
    return found
