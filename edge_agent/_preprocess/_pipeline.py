"""The steps chained in the order the config lists them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeAlias

from edge_agent._model import Reading
from edge_agent._preprocess._aggregate import AggregateConfig, Aggregator
from edge_agent._preprocess._deadband import Deadband, DeadbandConfig
from edge_agent._preprocess._usage import UsageConfig, UsageCounters

PIPELINE_STATE_VERSION = 1
"""The `version` of the dict `Pipeline.to_state` writes; `from_state` reads only this one."""

StepConfig: TypeAlias = DeadbandConfig | AggregateConfig | UsageConfig
"""The config of one pipeline step; its class picks the step."""


class Step(Protocol):
    """One pre-processing step (the Processor role): readings in, readings out.

    Calls come from one task: `process` and `flush` are never called concurrently, and the
    readings of one (asset, signal) arrive in the order they were read.
    """

    def process(self, readings: Sequence[Reading]) -> list[Reading]:
        """Take a batch of readings; return what to pass on now, in order."""
        ...

    def flush(self, now_ms: int) -> list[Reading]:
        """Return what is due by `now_ms` (epoch ms) without new input; may be called any time."""
        ...


def build_step(config: StepConfig) -> Deadband | Aggregator | UsageCounters:
    """The step that `config` configures."""
    if isinstance(config, DeadbandConfig):
        return Deadband(config=config)
    if isinstance(config, AggregateConfig):
        return Aggregator(config=config)
    return UsageCounters(config=config)


class Pipeline:
    """Steps chained in order: each step's output is the next one's input.

    A typical chain is usage counters (they need every raw reading), then aggregation of the
    fast signals, then the deadband (which also thins the totals and aggregates).

    Args:
        steps: The steps' configs, in order; their `name`s must be unique.

    Raises:
        ValueError: Two steps share a name.
    """

    def __init__(self, *, steps: Sequence[StepConfig]) -> None:
        names = [config.name for config in steps]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(
                f"steps: each step needs its own name; {', '.join(map(repr, duplicates))} "
                "is used more than once."
            )
        self.steps: tuple[Deadband | Aggregator | UsageCounters, ...] = tuple(
            build_step(config) for config in steps
        )
        self._kept_state: dict[str, object] = {}

    def process(self, readings: Sequence[Reading]) -> list[Reading]:
        """Run a batch through every step; return what leaves the last one."""
        out = list(readings)
        for step in self.steps:
            out = step.process(out)
        return out

    def flush(self, now_ms: int) -> list[Reading]:
        """Flush every step in order; what a step flushes is processed by the steps after it.

        Args:
            now_ms: The caller's clock, epoch ms.

        Returns:
            What leaves the last step.
        """
        out: list[Reading] = []
        for step in self.steps:
            out = step.process(out) + step.flush(now_ms)
        return out

    def to_state(self) -> dict[str, object]:
        """The state of the steps that have one (usage counters), as a JSON-serialisable dict.

        Returns:
            `{"version": PIPELINE_STATE_VERSION, "steps": {step name: step state}}`, including
            the state of steps the current config no longer has, as `from_state` found it.
        """
        states = dict(self._kept_state)
        for step in self.steps:
            if isinstance(step, UsageCounters):
                states[step.config.name] = step.to_state()
        return {"version": PIPELINE_STATE_VERSION, "steps": states}

    @classmethod
    def from_state(cls, state: Mapping[str, object], *, steps: Sequence[StepConfig]) -> Pipeline:
        """A pipeline of `steps` whose usage counters continue from a `to_state` dict.

        Args:
            state: The saved dict (e.g. after `json.loads`).
            steps: The steps' configs, in order.

        Returns:
            The restored pipeline.

        Raises:
            ValueError: `state` has another version or is malformed.
        """
        version = state.get("version")
        if version != PIPELINE_STATE_VERSION:
            raise ValueError(
                f"pipeline state: version must be {PIPELINE_STATE_VERSION}. "
                f"Got {version!r} instead."
            )
        saved = state.get("steps")
        if not isinstance(saved, Mapping):
            # ValueError, not TypeError: any malformed state raises the one documented exception.
            raise ValueError(f"pipeline state: steps must be an object. Got {saved!r} instead.")  # noqa: TRY004
        pipeline = cls(steps=steps)
        restored: set[str] = set()
        for index, step in enumerate(pipeline.steps):
            name = step.config.name
            if isinstance(step, UsageCounters) and name in saved:
                step_state = saved[name]
                if not isinstance(step_state, Mapping):
                    raise ValueError(f"pipeline state: steps.{name} must be an object.")
                pipeline.steps = (
                    *pipeline.steps[:index],
                    UsageCounters.from_state(step_state, config=step.config),
                    *pipeline.steps[index + 1 :],
                )
                restored.add(name)
        pipeline._kept_state = {
            str(name): value for name, value in saved.items() if name not in restored
        }
        return pipeline
