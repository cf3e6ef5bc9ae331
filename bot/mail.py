"""E-mail: multipart (plain text and HTML) messages sent through `OPSBOT_SMTP_URL`, queued as
scheduler timers so a message survives an SMTP server that is down for a while (retried with
backoff) and a restart of the bot.

`smtp://user:pass@host:587` upgrades with STARTTLS when the server offers it; `smtps://host:465`
talks TLS from the start.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from sqlmodel import Session

from bot.scheduler import Timer, set_timer

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

MAIL_TIMER = "mail.send"
TRANSPORT_KEY = "mail.transport"
# Retried for about a day: 1, 2, 4, ... minutes, then hourly.
MAX_ATTEMPTS = 30
MAX_BACKOFF = timedelta(hours=1)

Transport = Callable[[EmailMessage], None]


class MailNotConfigured(Exception):
    pass


def build_message(
    mail_from: str, to: list[str], subject: str, text: str, html: str | None = None
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=mail_from.rpartition("@")[2] or None)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def smtp_transport(url: str, timeout: float = 30.0) -> Transport:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise MailNotConfigured(
            f"OPSBOT_SMTP_URL must start with smtp:// or smtps:// (got {parts.scheme or 'nothing'})"
        )
    host = parts.hostname or "localhost"
    port = parts.port or (465 if parts.scheme == "smtps" else 587)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None

    def send(message: EmailMessage) -> None:
        context = ssl.create_default_context()
        if parts.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            client.ehlo()
            if parts.scheme == "smtp" and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            if user:
                client.login(user, password or "")
            client.send_message(message)

    return send


def queue(
    session: Session,
    now: datetime,
    *,
    key: str,
    to: list[str],
    subject: str,
    text: str,
    html: str | None = None,
) -> Timer:
    """Send soon, in the caller's unit of work: the message exists exactly when the change that
    caused it was committed. The same key twice queues one message."""
    payload = {"to": to, "subject": subject, "text": text, "html": html, "attempt": 1, "key": key}
    return set_timer(session, MAIL_TIMER, key, now, now, payload)


def install(runtime: Runtime) -> None:
    def transport() -> Transport:
        custom = runtime.extras.get(TRANSPORT_KEY)
        if custom is not None:
            return custom
        missing = [
            name
            for name, value in (
                ("OPSBOT_SMTP_URL", runtime.settings.smtp_url),
                ("OPSBOT_MAIL_FROM", runtime.settings.mail_from),
            )
            if not value
        ]
        if missing:
            raise MailNotConfigured(" and ".join(missing) + " not set")
        return smtp_transport(runtime.settings.smtp_url or "")

    def on_mail(session: Session, timer: Timer, now: datetime) -> None:
        payload: dict[str, Any] = dict(timer.payload)
        mail_from = runtime.settings.mail_from or "opsbot@localhost"  # only a custom transport
        try:
            send = transport()
            send(
                build_message(
                    mail_from,
                    payload["to"],
                    payload["subject"],
                    payload["text"],
                    payload.get("html"),
                )
            )
        except (OSError, smtplib.SMTPException, MailNotConfigured) as exc:
            attempt = int(payload.get("attempt", 1))
            timer.last_error = f"{type(exc).__name__}: {exc}"[:500]
            if attempt >= MAX_ATTEMPTS:
                log.error("e-mail %s given up after %s attempts: %s", timer.ref, attempt, exc)
                timer.status = "failed"
                return
            delay = min(timedelta(minutes=2 ** (attempt - 1)), MAX_BACKOFF)
            log.warning("e-mail %s not sent (%s); retrying in %s", timer.ref, exc, delay)
            set_timer(
                session,
                MAIL_TIMER,
                timer.ref,
                now + delay,
                now,
                {**payload, "attempt": attempt + 1},
            )
            return
        log.info("e-mail %s sent to %s", timer.ref, ", ".join(payload["to"]))

    runtime.scheduler.on_timer(MAIL_TIMER, on_mail)
