"""The failed-credential budget per client address: spent, refilled, held, per address, bounded."""

from __future__ import annotations

from gateway.access.failures import AuthFailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_minutes_budget_then_every_answer_is_held_until_it_refills() -> None:
    clock = Clock()
    throttle = AuthFailureThrottle(60, 1.5, clock=clock, jitter=lambda: 0.5)  # one a second, sixty at once
    assert [throttle.failed("198.51.100.7") for _ in range(60)] == [0.0] * 60
    assert throttle.failed("198.51.100.7") == 1.5
    assert throttle.failed("198.51.100.7") == 1.5
    assert throttle.held == 2
    clock.now += 1.0  # one more failure's worth
    assert throttle.failed("198.51.100.7") == 0.0
    assert throttle.failed("198.51.100.7") == 1.5
    clock.now += 3600  # refills to the burst, not beyond
    assert [throttle.failed("198.51.100.7") for _ in range(61)].count(1.5) == 1


def test_each_address_has_its_own_budget() -> None:
    throttle = AuthFailureThrottle(2, 1.0, clock=Clock(), jitter=lambda: 0.5)
    assert [throttle.failed("192.0.2.1") for _ in range(3)] == [0.0, 0.0, 1.0]
    assert [throttle.failed("192.0.2.2") for _ in range(2)] == [0.0, 0.0]


def test_memory_is_bounded_and_the_least_recently_failing_are_forgotten() -> None:
    throttle = AuthFailureThrottle(1, 1.0, max_clients=3, clock=Clock(), jitter=lambda: 0.5)
    for address in ("a", "b", "c"):
        throttle.failed(address)
    throttle.failed("a")  # a failed again: b is now the oldest
    throttle.failed("d")
    assert len(throttle) == 3
    assert throttle.failed("a") == 1.0  # still remembered, still out of budget
    assert throttle.failed("b") == 0.0  # forgotten, so a fresh budget


def test_held_answers_are_spread_around_the_delay() -> None:
    draws = iter([0.0, 0.999])
    throttle = AuthFailureThrottle(1, 2.0, clock=Clock(), jitter=lambda: next(draws))
    throttle.failed("192.0.2.9")
    assert throttle.failed("192.0.2.9") == 1.0  # half the delay at the least
    assert 2.99 < throttle.failed("192.0.2.9") < 3.0  # one and a half at the most


def test_an_ipv6_client_is_its_64_and_a_mapped_ipv4_one_its_address() -> None:
    throttle = AuthFailureThrottle(1, 1.0, clock=Clock(), jitter=lambda: 0.5)
    assert throttle.failed("2001:db8:1:2::1") == 0.0
    assert throttle.failed("2001:db8:1:2:ffff::9") == 1.0  # same /64: same budget
    assert throttle.failed("2001:db8:1:3::1") == 0.0  # another /64
    assert throttle.failed("::ffff:192.0.2.7") == 0.0
    assert throttle.failed("192.0.2.7") == 1.0  # the same IPv4 client, however it is spelled
