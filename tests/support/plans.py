"""A test-only `PollPlan`: every register word is a uint16 signal, every bit a bool signal.

Until the read planner's `compile_plan` exists, source tests build plans with this; golden tests
will use the real planner instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edge_agent._model import BlockResult, PollGroup, Reading, ReadRequest, RegisterKind


def signal_name(kind: RegisterKind, address: int) -> str:
    """The signal a `WordPlan` gives one address: `holding_0`, `coil_3`, ..."""
    return f"{kind}_{address}"


class WordPlan:
    """Decodes each value of each request as its own signal (`signal_name(kind, address)`).

    Args:
        asset: Asset id of the readings.
        groups: The poll groups, fastest first.
    """

    def __init__(self, *, asset: str, groups: Sequence[PollGroup]) -> None:
        self.asset = asset
        self._groups = tuple(groups)

    @classmethod
    def one_group(
        cls,
        *,
        asset: str,
        unit: int,
        interval_s: float,
        requests: Sequence[tuple[RegisterKind, int, int]],
    ) -> WordPlan:
        """A plan of one group: `requests` as `(kind, address, count)`."""
        reqs = tuple(ReadRequest(kind, unit, address, count) for kind, address, count in requests)
        return cls(asset=asset, groups=[PollGroup(interval_s, reqs)])

    @property
    def groups(self) -> Sequence[PollGroup]:
        """The poll groups."""
        return self._groups

    def decode(self, results: Mapping[ReadRequest, BlockResult]) -> list[Reading]:
        """One reading per address of every request in `results`, good or bad."""
        readings: list[Reading] = []
        for group in self._groups:
            for request in group.requests:
                result = results.get(request)
                if result is None:
                    continue
                values: Sequence[int] | Sequence[bool] | None = (
                    result.words if request.kind in ("holding", "input") else result.bits
                )
                for offset in range(request.count):
                    name = signal_name(request.kind, request.address + offset)
                    if result.error is not None:
                        readings.append(Reading.bad(self.asset, name, result.ts_ms, result.error))
                    elif values is None or offset >= len(values):
                        readings.append(
                            Reading.bad(self.asset, name, result.ts_ms, "short_response")
                        )
                    else:
                        readings.append(Reading(self.asset, name, result.ts_ms, values[offset]))
        return readings
