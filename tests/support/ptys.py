"""Serial lines for tests: a socat pty pair (the Debian package `socat`)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def socat_pty_pair(folder: Path) -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals, as `(a, b)` paths: bytes written to one are read on the other.

    Runs `socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B`, waits until both links
    exist, and terminates socat on exit. Skips the test when socat is not installed.
    """
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("socat is not installed (Debian package socat)")
    a, b = folder / "pty-a", folder / "pty-b"
    for stale in (a, b):  # left by an earlier pair in the same folder
        stale.unlink(missing_ok=True)
    with (folder / "socat.log").open("wb") as log:
        proc = subprocess.Popen(
            [socat, "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 10
        while not (a.exists() and b.exists()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"socat did not create the ptys: {(folder / 'socat.log').read_text()}"
                )
            time.sleep(0.01)
        yield str(a), str(b)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
