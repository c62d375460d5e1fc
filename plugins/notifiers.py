"""Failure alerts: an Airflow notifier that emails who settings name when a step task fails for good.

Used as the DAG's ``on_failure_callback`` (a task's last try; retries do not alert). Settings:
``IMAGESEARCH_ALERT_EMAIL_TO`` (comma-separated; empty: no alert), ``_ALERT_EMAIL_FROM`` and
``_ALERT_SMTP_URL`` (``smtp://[user:password@]host[:port]``, STARTTLS when the server offers it, or
``smtps://`` for TLS). A mail server that cannot be reached is logged, never turned into a second failure.
"""

from __future__ import annotations

import smtplib
from email import policy
from email.message import EmailMessage
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from airflow.sdk import BaseNotifier

from imagesearch.settings import SettingsError, get_settings
from imagesearch.uri import redact_userinfo

if TYPE_CHECKING:
    from airflow.sdk import Context

SMTP_TIMEOUT_S = 30
# A run id makes the subject longer than the 78 columns headers are folded at, and a folded subject reads
# with a leading blank in some clients: lines may be 998 long (RFC 5322).
MESSAGE_POLICY = policy.SMTP.clone(max_line_length=998)


def failure_message(context: Context, sender: str, recipients: list[str]) -> EmailMessage:
    ti = context["ti"]
    run = context["dag_run"]
    task = ti.task_id + (f"[{ti.map_index}]" if ti.map_index is not None and ti.map_index >= 0 else "")
    error = context.get("exception")
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["Subject"] = f"[{ti.dag_id}] {task} failed in run {run.run_id}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(
        f"Task {task} of {ti.dag_id} failed after {ti.try_number} tries.\n\n"
        f"Run: {run.run_id} (run after {run.run_after:%Y-%m-%d %H:%M} UTC)\n"
        f"Error: {error or 'see the log'}\n"
        f"Log: {ti.log_url}\n"
    )
    return message


def smtp_client(url: str) -> smtplib.SMTP:
    """A connected, logged-in SMTP client for an ``smtp://`` or ``smtps://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise SettingsError(f"IMAGESEARCH_ALERT_SMTP_URL must be smtp://host[:port] or smtps://..., not {redact_userinfo(url)!r}")
    if parts.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(parts.hostname, parts.port or 465, timeout=SMTP_TIMEOUT_S)
    else:
        client = smtplib.SMTP(parts.hostname, parts.port or 25, timeout=SMTP_TIMEOUT_S)
        client.ehlo()
        if client.has_extn("starttls"):
            client.starttls()
            client.ehlo()
    if parts.username:
        client.login(unquote(parts.username), unquote(parts.password or ""))
    return client


class FailureEmailNotifier(BaseNotifier):
    """Emails ``IMAGESEARCH_ALERT_EMAIL_TO`` (read when the task fails, on the worker) about a failed task."""

    def notify(self, context: Context) -> None:
        settings = get_settings()
        recipients = [address.strip() for address in settings.alerts.email_to.split(",") if address.strip()]
        if not recipients:
            return
        message = failure_message(context, settings.alerts.email_from, recipients)
        try:
            with smtp_client(settings.alerts.smtp_url) as client:
                client.send_message(message)
        except (OSError, smtplib.SMTPException, SettingsError) as exc:
            self.log.error("could not send the failure alert to %s: %s", ", ".join(recipients), exc)
            return
        self.log.info("sent the failure alert %r to %s", message["Subject"], ", ".join(recipients))
