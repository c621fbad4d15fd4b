"""The notice inbox of ``handoff live``: what Handoff's alert channels delivered, on one page.

It receives what a company's Slack workspace, webhook consumer and mailbox would: a Slack-compatible
incoming webhook (``POST /slack``), the JSON webhook (``POST /webhook``, which names each notice's
kind) and e-mail (an SMTP server). ``GET /`` shows every delivery newest first and refreshes itself;
``GET /notices.json`` lists them for scripts and tests.
"""

from __future__ import annotations

import html
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

PAGE_REFRESH_S = 5
PAGE_LIMIT = 200


@dataclass(frozen=True)
class Delivery:
    channel: str  # slack, webhook or email
    title: str
    kind: str | None  # at_risk, breached, escalated, digest, run_failure: the JSON webhook says
    lines: tuple[str, ...]
    recipients: tuple[str, ...]
    key: str | None = None  # the notice's idempotency key and record link: the JSON webhook says
    link: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def at(self) -> str:
        return self.received_at.strftime("%Y-%m-%d %H:%M:%S UTC")

    def as_json(self) -> dict:
        return {
            "channel": self.channel,
            "title": self.title,
            "kind": self.kind,
            "key": self.key,
            "link": self.link,
            "lines": list(self.lines),
            "recipients": list(self.recipients),
            "at": self.at,
        }


def _slack_delivery(message: dict) -> Delivery:
    """A Block Kit message as Slack would show it: the text, then each section's fields."""
    lines = [
        text_field["text"].replace("*", "").replace("\n", ": ")
        for block in message.get("blocks", [])
        for text_field in block.get("fields", [])
    ]
    return Delivery("slack", str(message.get("text", "")), None, tuple(lines), ())


def _webhook_delivery(notice: dict) -> Delivery:
    lines = [f"{label}: {value}" for label, value in (notice.get("fields") or {}).items()]
    return Delivery(
        "webhook",
        str(notice.get("title", "")),
        notice.get("kind"),
        tuple(lines),
        tuple(notice.get("recipients", [])),
        notice.get("key"),
        notice.get("link"),
    )


class _KeepMail(Message):
    def __init__(self, inbox: Inbox):
        super().__init__(EmailMessage)
        self.inbox = inbox

    def handle_message(self, message) -> None:
        body = message.get_payload(decode=True) or b""
        self.inbox.add(
            Delivery(
                "email",
                str(message["Subject"] or ""),
                None,
                tuple(body.decode(errors="replace").splitlines()),
                tuple(address.strip() for address in str(message["To"] or "").split(",") if address.strip()),
            )
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """The receivers, started in this process's threads; ``environment()`` points Handoff's alert
    channels at them."""

    def __init__(self, port: int = 0):
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self._socket.listen()
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(self._app(), log_level="warning", access_log=False))
        self._thread: threading.Thread | None = None
        # The controller checks it is up by connecting to its own port, so it gets a fixed one.
        self._smtp = Controller(_KeepMail(self), hostname="127.0.0.1", port=_free_port())

    def environment(self) -> dict[str, str]:
        return {
            "HANDOFF_ALERT_SLACK_WEBHOOK_URL": f"{self.url}/slack",
            "HANDOFF_ALERT_WEBHOOK_URL": f"{self.url}/webhook",
            "HANDOFF_SMTP_HOST": "127.0.0.1",
            "HANDOFF_SMTP_PORT": str(self._smtp.port),
            "HANDOFF_ALERT_EMAIL_TO": "revops@handoff-demo.example",
        }

    def add(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def counts_by_kind(self) -> Counter[str]:
        """Notices by kind, as the JSON webhook received them (every notice goes to each channel)."""
        return Counter(delivery.kind for delivery in self.deliveries() if delivery.kind)

    def start(self) -> Inbox:
        self._smtp.start()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="inbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)
        self._smtp.stop()
        self._socket.close()

    def _app(self) -> FastAPI:
        app = FastAPI(title="Handoff live: notice inbox")

        @app.post("/slack")
        async def slack(request: Request) -> dict:
            self.add(_slack_delivery(await request.json()))
            return {"ok": True}

        @app.post("/webhook")
        async def webhook(request: Request) -> dict:
            self.add(_webhook_delivery(await request.json()))
            return {"ok": True}

        @app.get("/notices.json")
        def notices() -> dict:
            return {
                "counts": dict(self.counts_by_kind()),
                "deliveries": [delivery.as_json() for delivery in self.deliveries()],
            }

        @app.get("/", response_class=HTMLResponse)
        def page() -> str:
            return render_page(self.deliveries()[::-1][:PAGE_LIMIT], self.counts_by_kind())

        return app


def _item(delivery: Delivery) -> str:
    to = f" to {', '.join(delivery.recipients)}" if delivery.recipients else ""
    lines = "<br>".join(html.escape(line) for line in delivery.lines)
    return (
        f'<li class="{html.escape(delivery.channel)}"><span class="meta">{html.escape(delivery.at)} · '
        f"{html.escape(delivery.channel + to)}</span><strong>{html.escape(delivery.title)}</strong><br>{lines}</li>"
    )


def render_page(deliveries: list[Delivery], counts: Counter[str]) -> str:
    summary = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in sorted(counts.items())) or "none yet"
    items = "\n".join(_item(delivery) for delivery in deliveries)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{PAGE_REFRESH_S}">
<title>Handoff live: notice inbox</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; }}
ul {{ list-style: none; padding: 0; }}
li {{ border-left: 4px solid #9aa5b1; padding: .5rem 1rem; margin: .5rem 0; background: #f5f7fa; }}
li.slack {{ border-color: #611f69; }} li.email {{ border-color: #0b6bcb; }} li.webhook {{ border-color: #2f855a; }}
.meta {{ display: block; font-size: .8rem; color: #616e7c; }}
</style></head>
<body><h1>Notice inbox</h1>
<p>What Handoff's alert channels delivered (Slack-compatible webhook, JSON webhook, e-mail), newest first.
Notices by kind: {html.escape(summary)}.</p>
<ul>
{items}
</ul></body></html>
"""
