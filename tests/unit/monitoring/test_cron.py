"""When a cron schedule last fired."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kubeloop.monitoring.cron import parse_cron


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "now", "previous"),
    [
        ("0 3 * * 1", "2025-03-05T10:00", "2025-03-03T03:00"),  # Monday 03:00 (5 March 2025 is a Wednesday)
        ("0 3 * * 1", "2025-03-03T03:00", "2025-03-03T03:00"),  # at the minute itself
        ("0 3 * * 1", "2025-03-03T02:59", "2025-02-24T03:00"),
        ("*/15 * * * *", "2025-03-05T10:14:59", "2025-03-05T10:00"),
        ("30 9-17/4 * * *", "2025-03-05T16:00", "2025-03-05T13:30"),
        ("0 0 1,15 * *", "2025-03-14T00:00", "2025-03-01T00:00"),
        ("@daily", "2025-03-05T10:00", "2025-03-05T00:00"),
        ("@weekly", "2025-03-05T10:00", "2025-03-02T00:00"),  # Sunday
        ("0 12 * jan-feb mon", "2025-03-05T10:00", "2025-02-24T12:00"),
        ("0 0 13 * fri", "2025-03-05T10:00", "2025-02-28T00:00"),  # day 13 OR Friday: Friday 28 Feb
        ("0 0 29 2 *", "2025-03-05T10:00", "2024-02-29T00:00"),
        ("0 0 * * 7", "2025-03-05T10:00", "2025-03-02T00:00"),  # 7 is Sunday too
    ],
)
def test_previous_fire(expr, now, previous):
    assert parse_cron(expr).previous(t(now)) == t(previous)


def test_fired_since():
    schedule = parse_cron("0 3 * * *")
    assert schedule.fired_since(t("2025-03-05T02:00"), t("2025-03-05T03:00")) == t("2025-03-05T03:00")
    assert schedule.fired_since(t("2025-03-05T03:00"), t("2025-03-05T12:00")) is None


def test_never_fires():
    assert parse_cron("0 0 30 2 *").previous(t("2025-03-05T10:00")) is None


@pytest.mark.parametrize("bad", ["* * * *", "61 * * * *", "*/0 * * * *", "0 0 * * funday", "5-1 * * * *"])
def test_invalid_expressions_are_refused(bad):
    with pytest.raises(ValueError):
        parse_cron(bad)
