"""The simulator's own certificate authority, kept in the state dir so browsers and CLIs can trust it once."""

from __future__ import annotations

import fcntl
import os
import ssl
from pathlib import Path

import trustme

IDENTITIES = ("127.0.0.1", "localhost", "::1")


def _load_or_create_ca(state_dir: Path) -> trustme.CA:
    state_dir.mkdir(parents=True, exist_ok=True)
    cert, key = state_dir / "ca.pem", state_dir / "ca-key.pem"
    with open(state_dir / ".ca.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several instances may share one state dir
        if cert.exists() and key.exists():
            return trustme.CA.from_pem(cert.read_bytes(), key.read_bytes())
        ca = trustme.CA(organization_name="gemini_sim", organization_unit_name="Gemini simulator CA")
        for path, data in ((key, ca.private_key_pem.bytes()), (cert, ca.cert_pem.bytes())):
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.chmod(tmp, 0o600 if path is key else 0o644)
            os.replace(tmp, path)
        return ca


def ensure(state_dir: Path, extra_hosts: tuple[str, ...] = ()) -> tuple[Path, ssl.SSLContext, ssl.SSLContext]:
    """Return the CA path, a server context (fresh leaf cert) and a client context trusting the CA."""
    ca = _load_or_create_ca(state_dir)
    leaf = ca.issue_cert(*IDENTITIES, *extra_hosts)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return state_dir / "ca.pem", server, client
