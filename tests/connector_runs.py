"""Open-source connectors against the sandbox, run as their users run them: each from its own
environment (``connectors/<name>/requirements.lock``, installed by ``make connectors``), through its
own command line. A connector that builds every URL on its vendor's host reaches the sandbox the way
a user behind a TLS-inspecting company proxy reaches the vendor: ``HTTPS_PROXY`` names the proxy, and
the proxy's certificate authority is trusted through the operating system's store (``pip-system-certs``
in the connector's environment, ``SSL_CERT_FILE`` naming the CA)."""

import os
import socketserver
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipeline.settings import PROJECT_DIR

CONNECTORS_VENVS = PROJECT_DIR / ".venv-connectors"


def connector_command(name: str, command: str | None = None) -> Path:
    """The command ``command`` (by default the connector's own name) of connector ``name``'s environment."""
    path = CONNECTORS_VENVS / name / "bin" / (command or name)
    if not path.exists():
        pytest.fail(f"{path.relative_to(PROJECT_DIR)} is missing: run `make connectors`")
    return path


@dataclass(frozen=True)
class Certificates:
    authority: Path  # the CA the connector is told to trust
    server: ssl.SSLContext  # the vendor host's certificate, issued by that CA


def issue_certificates(host: str, folder: Path) -> Certificates:
    authority_key, host_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    authority_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Handoff sandbox proxy CA")])
    now = datetime.now(UTC)

    def certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(authority_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key.public_key()), critical=False
            )
        )

    authority = (
        certificate(authority_name, authority_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # certificate and CRL signing only
        .sign(authority_key, hashes.SHA256())
    )
    host_certificate = (
        certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]), host_key)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(authority_key, hashes.SHA256())
    )
    authority_file, chain_file, key_file = folder / "proxy-ca.pem", folder / "host.pem", folder / "host-key.pem"
    authority_file.write_bytes(authority.public_bytes(serialization.Encoding.PEM))
    chain_file.write_bytes(host_certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        host_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(chain_file, key_file)
    return Certificates(authority_file, server)


# Per connection, not per message: a proxy must not pass them on (RFC 9110, 7.6.1).
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host", "content-length"}


@contextmanager
def intercepting_proxy(host: str, upstream: str, certificates: Certificates) -> Iterator[str]:
    """An HTTPS proxy, as a company runs one to inspect its traffic: a tunnel asked for ``host:443`` is
    answered by the proxy itself, with ``host``'s certificate, and each request in it is sent on to
    ``upstream`` + its path. Yields the proxy's URL."""
    upstream_client = httpx.Client(base_url=upstream, timeout=60)

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the connector's session expects

        def forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
            answer = upstream_client.request(self.command, self.path, content=body, headers=headers)
            self.send_response(answer.status_code)
            for name, value in answer.headers.multi_items():
                # httpx hands over the body decoded, so its encoding goes with the length.
                if name.lower() not in HOP_BY_HOP | {"content-encoding"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        def log_message(self, format: str, *args: object) -> None:  # the sandbox logs what it serves
            pass

    class Tunnel(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            request_line = self.rfile.readline().decode("latin-1").split()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # the CONNECT request's headers
            if request_line[:2] != ["CONNECT", f"{host}:443"]:
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            with certificates.server.wrap_socket(self.connection, server_side=True) as tls:
                Forward(tls, self.client_address, self.server)

    class Proxy(socketserver.ThreadingTCPServer):
        daemon_threads = True

    with upstream_client, Proxy(("127.0.0.1", 0), Tunnel) as proxy:
        serving = threading.Thread(target=proxy.serve_forever, daemon=True)
        serving.start()
        try:
            yield f"http://127.0.0.1:{proxy.server_address[1]}"
        finally:
            proxy.shutdown()


@contextmanager
def vendor_host(host: str, upstream: str, folder: Path) -> Iterator[dict[str, str]]:
    """The environment a connector runs in to reach ``host``, answered by ``upstream`` through an
    intercepting proxy: this process's environment without its own proxies, plus the proxy and its CA
    (written to ``folder``)."""
    certificates = issue_certificates(host, folder)
    with intercepting_proxy(host, upstream, certificates) as proxy:
        yield {
            **{name: value for name, value in os.environ.items() if not name.lower().endswith("_proxy")},
            "HTTPS_PROXY": proxy,
            "SSL_CERT_FILE": str(certificates.authority),
        }
