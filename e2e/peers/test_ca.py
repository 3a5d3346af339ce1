"""Makes the key material for a test that needs real TLS on loopback and a real Google service
account key, none of it trusted by anything but the test that asks for it.

Writes to OUT: ca.pem (a certificate authority of its own), server.pem and server-key.pem (a
certificate for 127.0.0.1 and localhost signed by that authority), and service-account.json (a
Google service account key file whose RSA key was made here and is known to no Google
project: Google's libraries sign their own JWT bearer tokens with it, offline).

    test_ca.py OUT
"""

import datetime
import ipaddress
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def name(common):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def pem(path, data, mode=0o600):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as out:
        out.write(data)


def main():
    out = sys.argv[1]
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder()
          .subject_name(name("ramlet test CA"))
          .issuer_name(name("ramlet test CA"))
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=True, key_cert_sign=True, crl_sign=True,
              content_commitment=False, key_encipherment=False, data_encipherment=False,
              key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder()
              .subject_name(name("127.0.0.1"))
              .issuer_name(ca.subject)
              .public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([
                  x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                  x509.DNSName("localhost")]), critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem(os.path.join(out, "ca.pem"), ca.public_bytes(serialization.Encoding.PEM), 0o644)
    pem(os.path.join(out, "server.pem"), server.public_bytes(serialization.Encoding.PEM), 0o644)
    pem(os.path.join(out, "server-key.pem"), server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = {
        "type": "service_account",
        "project_id": "ramlet-e2e",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": account_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode(),
        "client_email": "ramlet@ramlet-e2e.iam.gserviceaccount.com",
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    pem(os.path.join(out, "service-account.json"), json.dumps(account).encode(), 0o644)
    return 0


if __name__ == "__main__":
    sys.exit(main())
