"""Pick the email notifier the settings ask for."""

from __future__ import annotations

from bot.settings import Settings
from handlers.email.files import FileNotifier
from handlers.email.smtp import SmtpNotifier

OUTBOX_DIR = "outbox"


def build_email_notifier(settings: Settings) -> SmtpNotifier | FileNotifier:
    """SMTP when ``PAPERBELL_SMTP__HOST`` is set, else ``.eml`` files in ``DATA_DIR/outbox``."""
    if settings.smtp.host:
        return SmtpNotifier(settings.smtp, settings.email)
    return FileNotifier(settings.data_dir / OUTBOX_DIR, smtp=settings.smtp, email=settings.email)
