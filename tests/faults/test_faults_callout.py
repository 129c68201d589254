"""The auth callout of notebook 21 stops: logins are refused, never admitted.

Prints its figures (``pytest tests/faults/test_faults_callout.py -s``).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from edalab import AuthenticationError, Grant, LoginRequest, connect
from edalab.course.identity import callout_server

pytestmark = pytest.mark.slow

ATTEMPTS = 5
TIMEOUT = 0.5  # the server's auth timeout, seconds


def admit_ann(request: LoginRequest) -> Grant | None:
    """The running callout's rule: ann with her password, into TEAM_A."""
    if (request.user, request.password) != ("ann", "ann-pw"):
        return None
    return Grant("TEAM_A", publish=["team.a.>"], subscribe=["team.a.>", "_INBOX.>"])


async def _attempt(url: str) -> tuple[bool, float]:
    """(admitted, seconds) of one login as ann."""
    started = time.monotonic()
    try:
        nc = await connect(url, user="ann", password="ann-pw", timeout=TIMEOUT + 3)
    except AuthenticationError:
        return False, time.monotonic() - started
    await nc.close()
    return True, time.monotonic() - started


async def test_logins_refused_while_the_callout_is_down() -> None:
    """With the service stopped, every login (even a right one) is refused after the timeout."""
    async with callout_server("fault-callout", admit_ann, timeout=TIMEOUT) as lab:
        admitted_before, _ = await _attempt(lab.server.url)
        assert admitted_before, "ann must be admitted while the callout runs"
        still_open = await connect(lab.server.url, user="ann", password="ann-pw")
        await lab.service.stop()
        results = await asyncio.gather(*(_attempt(lab.server.url) for _ in range(ATTEMPTS)))
        admitted = sum(ok for ok, _ in results)
        waits = [took for _, took in results]
        print(
            f"\ncallout down: attempts {ATTEMPTS}, admitted {admitted}, refused "
            f"{ATTEMPTS - admitted}, time to refuse {min(waits):.2f}-{max(waits):.2f} s "
            f"(auth timeout {TIMEOUT} s); connection made before still open: "
            f"{still_open.is_connected}",
            flush=True,
        )
        assert admitted == 0
        assert all(TIMEOUT * 0.9 <= took < TIMEOUT + 2 for took in waits), waits
        assert still_open.is_connected
        await lab.service.start()
        admitted_after, took_after = await _attempt(lab.server.url)
        print(f"callout back: admitted {admitted_after} in {took_after:.2f} s", flush=True)
        assert admitted_after and took_after < TIMEOUT
        await still_open.close()
