"""
Test TLS material made at run time: a throw-away self-signed certificate and key written with the
`openssl` command into a directory the caller owns (a test's temp dir), so no key is ever committed.
"""
import os
import ssl
import subprocess


def make_test_cert(directory, common_name="localhost"):
    """Writes cert.pem and key.pem (P-256, valid two days) into directory; returns their paths."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=" + common_name,
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    os.chmod(key, 0o600)
    return cert, key


def client_context():
    """A client context that accepts any certificate: the tests check the protocol, not the PKI."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
