"""The webhook retry delays: within the documented 5-120 s window, growing, and jittered (computed,
never slept)."""

from __future__ import annotations

from app.config import Settings
from app.webhooks.service import RetryPolicy

SAMPLES = 200


def default_policy() -> RetryPolicy:
    fields = Settings.model_fields
    return RetryPolicy(
        max_attempts=fields["webhook_max_attempts"].default,
        base_seconds=fields["webhook_retry_base_seconds"].default,
        max_seconds=fields["webhook_retry_max_seconds"].default,
        disable_after_failures=fields["webhook_disable_after_failures"].default,
    )


def test_the_defaults_are_the_documented_window() -> None:
    policy = default_policy()
    assert (policy.base_seconds, policy.max_seconds) == (5.0, 120.0)
    assert policy.disable_after_failures == 20


def test_every_retry_delay_stays_within_5_to_120_seconds_and_is_jittered() -> None:
    policy = default_policy()
    for attempts in range(1, 40):  # far past the default attempts: the cap holds
        delays = [policy.delay(attempts) for _ in range(SAMPLES)]
        assert all(5.0 <= d <= 120.0 for d in delays), (attempts, min(delays), max(delays))
        assert len(set(delays)) > SAMPLES // 2, f"attempt {attempts}: delays are not jittered"


def test_delays_grow_from_the_base_to_the_cap() -> None:
    policy = default_policy()
    first = [policy.delay(1) for _ in range(SAMPLES)]
    assert all(5.0 <= d <= 10.0 for d in first)
    late = [policy.delay(12) for _ in range(SAMPLES)]
    assert all(60.0 <= d <= 120.0 for d in late)
    assert min(late) > max(first)


def test_a_base_above_the_cap_waits_the_cap() -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=10.0, max_seconds=4.0, disable_after_failures=20)
    assert {policy.delay(n) for n in (1, 2, 3)} == {4.0}
