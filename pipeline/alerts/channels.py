"""Where notices go: a Slack-compatible incoming webhook, a generic JSON webhook, e-mail over SMTP.

Channels are configured by environment variables only; webhook URLs carry their own credentials,
so no channel ever logs its address or stores it in the warehouse.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pipeline.settings import load_settings

REQUEST_TIMEOUT_S = 10
# Escalations and operator notices reach the operators too; an owner's own notices only the owner.
OPERATOR_KINDS = frozenset({"escalated", "run_failure"})


@dataclass(frozen=True)
class Notice:
    """One message to people: what happened (``title``), the facts as labelled ``fields``, a link
    to the record, and the e-mail addresses it concerns (the owner; a manager on escalation)."""

    key: str
    kind: str
    title: str
    fields: dict[str, str]
    link: str | None = None
    recipients: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {
            "key": self.key,
            "kind": self.kind,
            "title": self.title,
            "fields": self.fields,
            "link": self.link,
            "recipients": list(self.recipients),
        }

    @classmethod
    def from_json(cls, value: dict) -> Notice:
        return cls(
            value["key"],
            value["kind"],
            value["title"],
            value["fields"],
            value.get("link"),
            tuple(value.get("recipients", ())),
        )


class ChannelError(Exception):
    """A channel could not deliver; the outbox keeps the notice and tries again on a later run."""


class Channel(Protocol):
    name: str

    def send(self, notice: Notice) -> None: ...


def http_session() -> requests.Session:
    # Transient failures are retried within the run (honouring Retry-After); what still fails stays
    # in the outbox for the next run.
    retry = Retry(
        total=3,
        backoff_factor=0.5,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def _post(session: requests.Session, url: str, payload: dict, headers: dict[str, str] | None = None) -> None:
    try:
        response = session.post(url, json=payload, headers=headers, timeout=REQUEST_TIMEOUT_S)
    except requests.RequestException as error:
        # The exception's text can hold the URL, and with it the webhook's secret path.
        raise ChannelError(f"could not reach the webhook ({type(error).__name__})") from None
    if response.status_code >= 300:
        raise ChannelError(f"the webhook answered {response.status_code}: {response.text[:200]}")


def slack_blocks(notice: Notice) -> dict:
    """A Block Kit message: the title as header, the facts as a two-column section, a button to the record."""
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": notice.title[:150]}},
        # Slack shows at most ten fields in one section.
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in list(notice.fields.items())[:10]
            ],
        },
    ]
    if notice.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open in the CRM"}, "url": notice.link}
                ],
            }
        )
    return {"text": notice.title, "blocks": blocks}


@dataclass
class SlackChannel:
    url: str = field(repr=False)
    session: requests.Session = field(default_factory=http_session, repr=False)
    name: str = "slack"

    def send(self, notice: Notice) -> None:
        _post(self.session, self.url, slack_blocks(notice))


@dataclass
class WebhookChannel:
    """A JSON POST of the notice; ``Idempotency-Key`` lets a receiver drop a repeat after a crash."""

    url: str = field(repr=False)
    session: requests.Session = field(default_factory=http_session, repr=False)
    name: str = "webhook"

    def send(self, notice: Notice) -> None:
        _post(self.session, self.url, notice.as_json(), headers={"Idempotency-Key": notice.key})


@dataclass
class EmailChannel:
    host: str
    port: int
    sender: str
    # Operators' address: gets what concerns no one person (run failures) and a copy of escalations.
    operators: tuple[str, ...] = ()
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    name: str = "email"

    def recipients(self, notice: Notice) -> list[str]:
        wanted = list(notice.recipients)
        if notice.kind in OPERATOR_KINDS or not wanted:
            wanted += self.operators
        return sorted(set(wanted))

    def send(self, notice: Notice) -> None:
        recipients = self.recipients(notice)
        if not recipients:
            raise ChannelError("no recipient: the owner has no e-mail and HANDOFF_ALERT_EMAIL_TO is not set")
        message = EmailMessage()
        message["Subject"] = notice.title
        message["From"] = self.sender
        message["To"] = ", ".join(recipients)
        message["X-Handoff-Notice-Key"] = notice.key
        lines = [f"{label}: {value}" for label, value in notice.fields.items()]
        if notice.link:
            lines += ["", notice.link]
        message.set_content("\n".join(lines) + "\n")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=REQUEST_TIMEOUT_S) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            raise ChannelError(f"the mail server refused or could not be reached: {error}") from None


def configured_channels() -> list[Channel]:
    """The channels the environment configures: ``HANDOFF_ALERT_SLACK_WEBHOOK_URL``,
    ``HANDOFF_ALERT_WEBHOOK_URL`` and ``HANDOFF_SMTP_HOST`` (with ``HANDOFF_SMTP_PORT``,
    ``HANDOFF_SMTP_FROM``, ``HANDOFF_SMTP_USER``, ``HANDOFF_SMTP_PASSWORD``, ``HANDOFF_SMTP_STARTTLS``
    and the operators' ``HANDOFF_ALERT_EMAIL_TO``, comma-separated)."""
    settings = load_settings()
    channels: list[Channel] = []
    if settings.alert_slack_webhook_url:
        channels.append(SlackChannel(settings.alert_slack_webhook_url.get_secret_value()))
    if settings.alert_webhook_url:
        channels.append(WebhookChannel(settings.alert_webhook_url.get_secret_value()))
    if settings.smtp_host:
        channels.append(
            EmailChannel(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                operators=tuple(a.strip() for a in settings.alert_email_to.split(",") if a.strip()),
                username=settings.smtp_user,
                password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                starttls=settings.smtp_starttls,
            )
        )
    return channels
