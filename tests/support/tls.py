"""Throwaway TLS material for the broker tests, made with openssl."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    """The CA certificate that signed `cert` (PEM)."""
    cert: Path
    """The server certificate for 127.0.0.1 and localhost (PEM)."""
    key: Path
    """The server certificate's key (PEM, not encrypted)."""


def make_certificates(folder: Path, *, name: str = "iwb test CA") -> TlsFiles | None:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it; None when
    openssl is missing."""
    if not shutil.which("openssl"):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, csr = folder / "server.pem", folder / "server.key", folder / "server.csr"
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n", "utf-8")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
            "-out", str(ca), "-days", "2", "-subj", f"/CN={name}")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", "/CN=localhost")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return TlsFiles(ca, cert, key)
