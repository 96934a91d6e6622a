"""TLS and mutual TLS on a real server, with certificates made by openssl for the test; and the refusal to
listen beyond loopback in plaintext."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from advisor.api.client import AdvisorClient, ClientError, ClientTls
from advisor.api.v1 import advisor_pb2 as pb
from advisor.app import App
from advisor.domain.access import Role
from advisor.domain.errors import ConfigError

pytestmark = pytest.mark.integration

MakeApp = Callable[..., App]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for localhost / 127.0.0.1, and client certificates for sched-1 and stranger."""
    d: Path = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=advisor test CA", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, ext in (("server", "server.ext"), ("sched-1", None), ("stranger", None)):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={'localhost' if name == 'server' else name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", *(["-extfile", ext] if ext else []), cwd=d)
    return d


def _client(app: App, pki: Path, *, token: str = "", cert: str = "") -> AdvisorClient:
    assert app.server is not None
    tls = ClientTls((pki / "ca.pem").read_bytes(), (pki / f"{cert}.pem").read_bytes() if cert else None,
                    (pki / f"{cert}.key").read_bytes() if cert else None)
    return AdvisorClient(f"127.0.0.1:{app.server.port}", token=token, tls=tls, timeout_s=10)


def test_tls_serves_encrypted_and_refuses_plaintext(make_app: MakeApp, pki: Path) -> None:
    app = make_app(tls_cert=str(pki / "server.pem"), tls_key=str(pki / "server.key"))
    token = app.tokens.renew("tls-reader", Role.READER)
    with _client(app, pki, token=token) as client:
        assert list(client.list_hosts()) == []
    assert app.server is not None
    with AdvisorClient(f"127.0.0.1:{app.server.port}", token=token, timeout_s=3) as plain, \
            pytest.raises(ClientError) as refused:
        list(plain.list_hosts())
    assert refused.value.code == "UNAVAILABLE"


def test_mutual_tls_maps_a_certificate_to_a_role(make_app: MakeApp, pki: Path) -> None:
    app = make_app(tls_cert=str(pki / "server.pem"), tls_key=str(pki / "server.key"),
                   tls_client_ca=str(pki / "ca.pem"), tls_client_roles={"CN=sched-1": "scheduler"})
    with _client(app, pki, cert="sched-1") as scheduler:
        scheduler.push_inventory(pb.PushInventoryRequest(hosts=[pb.Host(id="h", cpu_cores=2, memory_mib=1024)]))
        with pytest.raises(ClientError) as denied:
            scheduler.decide("nope", True)
        assert denied.value.code == "PERMISSION_DENIED" and "CN=sched-1 (scheduler)" in denied.value.details
    with _client(app, pki, cert="stranger") as stranger, pytest.raises(ClientError) as unknown:
        list(stranger.list_hosts())
    assert unknown.value.code == "UNAUTHENTICATED" and "mapped to no role" in unknown.value.details
    with _client(app, pki) as no_certificate, pytest.raises(ClientError) as handshake:
        list(no_certificate.list_hosts())
    assert handshake.value.code == "UNAVAILABLE"
    entries = {(e.actor, e.call, e.outcome) for e in app.audit.recent(20)}
    assert ("CN=sched-1", "InventoryService/PushInventory", "OK") in entries


def test_listening_beyond_loopback_needs_tls_or_an_explicit_yes(make_app: MakeApp, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="beyond loopback"):
        make_app(data_dir=tmp_path / "a", listen="0.0.0.0:0")
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        make_app(data_dir=tmp_path / "b", tls_cert="x.pem")
    with pytest.raises(ConfigError, match="tls_cert: cannot read"):
        make_app(data_dir=tmp_path / "c", tls_cert=str(tmp_path / "none.pem"), tls_key=str(tmp_path / "none.key"))
    app = make_app(data_dir=tmp_path / "d", listen="0.0.0.0:0", allow_plaintext_remote=True)
    assert app.server is not None and app.server.port > 0
