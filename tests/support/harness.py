"""Small helpers for async tests without pytest-asyncio: run a coroutine, collect readings."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from edge_agent._model import Quality, Reading

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T], *, timeout_s: float = 15.0) -> T:
    """Run `coro` on a fresh event loop, failing after `timeout_s`."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout_s):
            return await coro

    return asyncio.run(bounded())


@dataclass
class ReadingLog:
    """An `emit` callback that keeps every reading with the monotonic time it was emitted."""

    entries: list[tuple[float, Reading]] = field(default_factory=list)

    def __call__(self, readings: Sequence[Reading]) -> None:
        """Record a poll's readings."""
        now = time.monotonic()
        self.entries.extend((now, reading) for reading in readings)

    def of(self, asset: str, signal: str | None = None) -> list[tuple[float, Reading]]:
        """Entries of one asset (and signal)."""
        return [
            (at, r)
            for at, r in self.entries
            if r.asset == asset and (signal is None or r.signal == signal)
        ]

    def good_times(self, asset: str, signal: str) -> list[float]:
        """Emission times of the good readings of one signal."""
        return [at for at, r in self.of(asset, signal) if r.quality is Quality.GOOD]

    def reasons(self, asset: str) -> set[str]:
        """Reasons of the asset's bad readings."""
        return {r.reason for _, r in self.of(asset) if r.reason is not None}

    async def wait_for(
        self, predicate: Callable[[ReadingLog], bool], *, timeout_s: float = 5.0
    ) -> None:
        """Wait (polling every 10 ms) until `predicate(self)` holds."""
        async with asyncio.timeout(timeout_s):
            while not predicate(self):  # noqa: ASYNC110 - polls a predicate over emitted readings
                await asyncio.sleep(0.01)


async def cancel(task: Awaitable[object] | asyncio.Task[Any]) -> None:
    """Cancel a task and wait until it has finished."""
    if isinstance(task, asyncio.Task):
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
