"""E-mail through real SMTP servers on loopback (aiosmtpd): plain, STARTTLS with a login, and
TLS from the start (smtps://). Certificates are made by openssl for the test and trusted through
SSL_CERT_FILE, as an operator's own CA would be."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from bot.mail import MailNotConfigured, build_message, smtp_transport
from tests.wins_world import Inbox, free_port


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def message():
    return build_message(
        "opsbot@example.com",
        ["cto@example.com"],
        "Wins and Challenges",
        "Plain text",
        "<p>HTML</p>",
    )


def test_multipart_message_has_plain_text_and_html():
    built = message()
    assert built.get_body(("plain",)).get_content().strip() == "Plain text"
    assert built.get_body(("html",)).get_content().strip() == "<p>HTML</p>"
    assert built["Message-ID"].endswith("@example.com>")


def test_starttls_is_used_when_offered_and_the_login_travels_encrypted(certificate):
    inbox = Inbox()
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password, session.ssl is not None))
        return AuthResult(success=auth_data.password == b"s3cret")

    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=certificate,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        smtp_transport(f"smtp://bot%40example.com:s3cret@127.0.0.1:{port}")(message())
    finally:
        controller.stop()
    assert logins == [(b"bot@example.com", b"s3cret", True)]
    assert len(inbox.messages) == 1


def test_smtps_talks_tls_from_the_start(certificate):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=certificate)
    controller.start()
    try:
        smtp_transport(f"smtps://127.0.0.1:{port}")(message())
    finally:
        controller.stop()
    assert inbox.messages[0]["Subject"] == "Wins and Challenges"


def test_an_smtp_url_of_another_kind_is_refused_clearly():
    with pytest.raises(MailNotConfigured, match="smtp:// or smtps://"):
        smtp_transport("http://mail.example.com")
