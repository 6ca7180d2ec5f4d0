"""The one small interface every source implements, and how the agent runs one.

A *source* is one worker: an RTU bus with its devices, a TCP device (or gateway), or one serial
line device. The agent starts one asyncio task per source, so a timeout on one never delays
another, and hands each the same `emit` callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from edge_agent._model import Reading
from edge_agent.sources._device import DeviceState

Emit = Callable[[Sequence[Reading]], None]
"""Receives the readings of one poll (good and bad), in the worker's task. It must not block;
whatever it raises stops the worker (it is the agent's bug, not the device's)."""


class Source(Protocol):
    """One worker: polls its devices on their schedule and emits readings."""

    @property
    def name(self) -> str:
        """The bus, TCP endpoint or line device name; the task is named `edge[{name}].poll`."""
        ...

    @property
    def states(self) -> Mapping[str, DeviceState]:
        """Runtime state per device name. Read it from any task of the same loop, at any time."""
        ...

    async def run(self, emit: Emit) -> None:
        """Poll until cancelled. Called once per source; never concurrently with itself.

        Device failures never raise out of it: they become bad readings and state. It returns
        early only when no device is left to poll (all dropped by `startup_error_behavior:
        ignore`), and raises `DeviceStartupError` for a device with `startup_error_behavior:
        error` that did not answer its first poll.
        """
        ...

    async def aclose(self) -> None:
        """Release ports and connections. Called once, after `run()` returned or was cancelled."""
        ...


def start_source(source: Source, emit: Emit) -> asyncio.Task[None]:
    """Start `source.run(emit)` as a task named `edge[{name}].poll` (STYLE.md 14).

    Call from inside the running loop. Cancel the task to stop the source, then `await
    source.aclose()`.
    """
    return asyncio.create_task(source.run(emit), name=f"edge[{source.name}].poll")
