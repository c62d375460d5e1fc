"""The failure notifier's SMTP settings."""

from __future__ import annotations

import pytest

from imagesearch.settings import SettingsError
from plugins.notifiers import smtp_client


def test_a_bad_smtp_url_is_a_clear_settings_error() -> None:
    with pytest.raises(SettingsError, match="IMAGESEARCH_ALERT_SMTP_URL must be smtp://"):
        smtp_client("http://mail.example.com")
