"""A throw-away PKI for TLS tests, made with the `openssl` command line (Debian package `openssl`).

The same steps as docs/tls.md, with short lifetimes and EC P-256 keys (fast to make): a CA, a
broker certificate for `localhost` and `127.0.0.1`, and one client certificate per identity whose
CN is the MQTT user name the broker's ACL sees.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_DAYS = "2"


@dataclass(frozen=True)
class Identity:
    """A client certificate and its key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """Where the CA, the broker's certificate and the clients' certificates are."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, Identity] = field(default_factory=dict)


def openssl() -> str:
    """The `openssl` binary; fails the test, naming the Debian package, when it is missing."""
    found = shutil.which("openssl")
    if found is None:
        pytest.fail("`openssl` not found: apt-get install openssl", pytrace=False)
    return found


def _run(*args: str | Path) -> None:
    proc = subprocess.run(
        [openssl(), *map(str, args)], capture_output=True, text=True, check=False, timeout=30
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def _key_and_csr(directory: Path, name: str, cn: str) -> tuple[Path, Path]:
    key, csr = directory / f"{name}.key", directory / f"{name}.csr"
    _run(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", f"/CN={cn}",
    )  # fmt: skip
    return key, csr


def _sign(ca: tuple[Path, Path], csr: Path, out: Path, extensions: str) -> None:
    ext = out.with_suffix(".ext")
    ext.write_text(extensions)
    _run(
        "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-days", _DAYS, "-sha256", "-extfile", ext, "-out", out,
    )  # fmt: skip


def make_ca(directory: Path, cn: str = "Prognos test CA") -> tuple[Path, Path]:
    """Make a self-signed CA certificate and key; returns (cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.crt", directory / "ca.key"
    _run(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", cert, "-days", _DAYS, "-subj", f"/CN={cn}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def make_client(directory: Path, ca: tuple[Path, Path], cn: str) -> Identity:
    """Make a client certificate whose CN (the broker's user name for it) is `cn`."""
    key, csr = _key_and_csr(directory, f"client-{cn}", cn)
    cert = directory / f"client-{cn}.crt"
    _sign(
        ca,
        csr,
        cert,
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\n",
    )
    return Identity(cert=cert, key=key)


def make_pki(directory: Path, clients: list[str]) -> Pki:
    """Make a CA, a broker certificate for localhost/127.0.0.1 and a certificate per client."""
    ca = make_ca(directory)
    server_key, server_csr = _key_and_csr(directory, "server", "localhost")
    server_cert = directory / "server.crt"
    _sign(
        ca,
        server_csr,
        server_cert,
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    return Pki(
        ca_cert=ca[0],
        ca_key=ca[1],
        server_cert=server_cert,
        server_key=server_key,
        clients={cn: make_client(directory, ca, cn) for cn in clients},
    )
