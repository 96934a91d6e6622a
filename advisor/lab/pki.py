"""The lab's migration certificates: a CA of its own and, per host, a server and a client certificate, made with
the openssl command at `lab up` under the lab root (`pki/`, removed by `down`; never in the repository).

Each host's directory is what libvirt's qemu.conf `migrate_tls_x509_cert_dir` names: `ca-cert.pem`, and the
target QEMU's `server-cert.pem`/`server-key.pem`, the source QEMU's `client-cert.pem`/`client-key.pem` (with
`migrate_tls_x509_verify = 1` the target checks the source's certificate too), and `dh-params.pem`. QEMU checks
the extensions: the CA may sign certificates, a server certificate is for TLS servers, a client's for clients,
and the server's names include the address the source connects to (the lab's migration address, 127.0.0.1).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from advisor.lab.state import LabError

CA_FILES = ("ca-cert.pem", "ca-key.pem")
HOST_FILES = ("ca-cert.pem", "server-cert.pem", "server-key.pem", "client-cert.pem", "client-key.pem",
              "dh-params.pem")
DAYS = 30
_EXTENSIONS = {
    "ca": "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    "server": "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
              "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,DNS:{host}\n",
    "client": "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
              "extendedKeyUsage=clientAuth\n",
}


class PkiError(LabError):
    """The certificates could not be made; the message carries openssl's words."""


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise PkiError("the lab makes its migration certificates with openssl; scripts/setup.sh installs it")
    result = subprocess.run(["openssl", *args], cwd=cwd, check=False, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise PkiError(f"openssl {args[0]} failed in {cwd}: {result.stderr.strip()}")


def _key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path.name, cwd=path.parent)
    path.chmod(0o600)


def ensure_ca(pki: Path) -> Path:
    """The lab's CA under `pki/ca` (made once per lab root)."""
    ca = pki / "ca"
    if all((ca / name).is_file() for name in CA_FILES):
        return ca
    ca.mkdir(parents=True, exist_ok=True)
    ca.chmod(0o700)
    _key(ca / "ca-key.pem")
    _openssl("req", "-new", "-key", "ca-key.pem", "-out", "ca.csr", "-subj", "/O=advisor lab/CN=advisor lab CA",
             cwd=ca)
    (ca / "ca.ext").write_text(_EXTENSIONS["ca"])
    _openssl("x509", "-req", "-in", "ca.csr", "-key", "ca-key.pem", "-out", "ca-cert.pem", "-days", str(DAYS),
             "-extfile", "ca.ext", cwd=ca)
    for leftover in ("ca.csr", "ca.ext"):
        (ca / leftover).unlink()
    return ca


def _issue(ca: Path, directory: Path, host: str, kind: str) -> None:
    _key(directory / f"{kind}-key.pem")
    _openssl("req", "-new", "-key", f"{kind}-key.pem", "-out", f"{kind}.csr",
             "-subj", f"/O=advisor lab/CN={host if kind == 'client' else 'localhost'}", cwd=directory)
    (directory / f"{kind}.ext").write_text(_EXTENSIONS[kind].format(host=host))
    _openssl("x509", "-req", "-in", f"{kind}.csr", "-CA", str(ca / "ca-cert.pem"), "-CAkey", str(ca / "ca-key.pem"),
             "-CAcreateserial", "-out", f"{kind}-cert.pem", "-days", str(DAYS), "-extfile", f"{kind}.ext",
             cwd=directory)
    for leftover in (f"{kind}.csr", f"{kind}.ext"):
        (directory / leftover).unlink()


def ensure_host(pki: Path, host: str) -> Path:
    """`pki/<host>`: the directory a host's qemu.conf names, made with the lab's CA if it is not complete."""
    directory = pki / host
    if all((directory / name).is_file() for name in HOST_FILES):
        return directory
    ca = ensure_ca(pki)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    shutil.copy2(ca / "ca-cert.pem", directory / "ca-cert.pem")
    for kind in ("server", "client"):
        _issue(ca, directory, host, kind)
    # Without it the target QEMU generates 2048-bit DH parameters for every incoming migration (about 2 s of
    # setup in the lab): RFC 7919's ffdhe2048 group instead, named, nothing to generate.
    _openssl("genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048", "-out", "dh-params.pem",
             cwd=directory)
    return directory


def complete(directory: Path) -> bool:
    """Whether `directory` holds every file a migration over TLS needs."""
    return all((directory / name).is_file() for name in HOST_FILES)
