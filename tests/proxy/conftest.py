"""Fixtures shared by the proxy tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.proxy.scripted import scripted_upstreams


@pytest.fixture
async def scripted() -> AsyncIterator[Any]:
    async for make in scripted_upstreams():
        yield make
