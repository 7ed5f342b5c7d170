"""
A throw-away PKI for outbound TLS tests, made at run time with python3-cryptography: a test CA and
server certificates it signs (valid, expired, for another name), and self-signed ones. Files go
into a directory the caller owns (a test's temp dir), readable by the daemon's user; no key is
ever committed.
"""
import datetime
import os
import shutil
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailnet import MailNetCase

DAY = datetime.timedelta(days=1)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, data, mode):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


class TestCA:
    """A CA whose certificate is directory/ca.pem (give it to the daemon as tls.ca_file)."""

    def __init__(self, directory, name="Sluice Test CA"):
        os.chmod(directory, 0o755)
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - DAY).not_valid_after(now + 30 * DAY)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                  False, False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.path = _write(os.path.join(directory, "ca.pem"),
                           self.cert.public_bytes(serialization.Encoding.PEM), 0o644)

    def server(self, label, *names, expired=False, self_signed=False):
        """Writes label.pem and label.key for a server named names[0] (names in its
        subjectAltName), signed by this CA, or by itself; expired: its validity ended yesterday.
        Returns (certificate path, key path)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = (now - 10 * DAY, now - DAY) if expired else (now - DAY, now + 10 * DAY)
        issuer, signer = (_name(names[0]), key) if self_signed else (self.cert.subject, self.key)
        cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(issuer)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                               critical=False)
                .sign(signer, hashes.SHA256()))
        base = os.path.join(self.directory, label)
        certfile = _write(base + ".pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
        keyfile = _write(base + ".key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), 0o600)
        return certfile, keyfile

    def server_context(self, label, *names, **kind):
        """An ssl server context presenting server(label, *names, **kind)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*self.server(label, *names, **kind))
        return ctx


class CaNetCase(MailNetCase):
    """A MailNetCase (self.net) with a test CA (self.ca) and STARTTLS peers whose certificates
    it signs."""

    def setUp(self):
        self.make_net()
        directory = tempfile.mkdtemp(prefix="sluice-pki-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.ca = TestCA(directory)

    def peer(self, name, **kind):
        """A STARTTLS peer named name presenting a certificate for cert_name (default: name);
        kind: see TestCA.server_context."""
        cert_name = kind.pop("cert_name", name)
        ctx = self.ca.server_context(name, cert_name, **kind)
        return self.net.peer(name, starttls=True, tls_context=ctx)
