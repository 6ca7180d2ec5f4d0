"""Line-oriented ASCII serial devices: a pure line framer, pure line parsers, a thin async source.

Theory of operation
-------------------
Bytes from the port go into a buffer; `LineFramer.read(buffer)` cuts one line at a time off its
front (the `read(buffer) -> (obj, nbytes)` contract of STYLE.md 6); a `LineParser` turns the line
into one `Reading` per configured signal, good or bad with the reason. `SerialLineSource` only
moves bytes: it opens the port, optionally writes a prompt every interval (for devices that
answer on request), feeds the framer, emits readings, and tracks availability.

Rules:
1. `read(buffer)` returns `(None, 0)` when the buffer holds no complete line ("need more data"),
   `(None, n)` when it dropped `n` bytes that make no line (blank lines, the rest of an overlong
   line), and `(Line, n)` for a line (possibly a bad one: `line_too_long`, `decode_error`).
2. A parser never raises on device data: a line that does not fit gives bad readings for every
   signal it should have carried, with the reason (`no_match`, `missing_field`, `not_a_number`).
3. A device that sends any line is available (its readings carry their own quality). A device
   silent for `timeout_s` is down (`timeout`); a port that fails or vanishes is `disconnected`
   and is reopened with exponential back-off.
"""

from __future__ import annotations

import asyncio
import csv
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import serial
import structlog

from edge_agent._model import Quality, Reading, Value
from edge_agent.sources._device import DeviceStartupError, DeviceState, log_transition
from edge_agent.sources._scheduler import Backoff, StartupErrorBehavior
from edge_agent.sources._source import Emit

_log = structlog.get_logger("edge_agent.sources")

LineEnding = Literal["lf", "cr"]


@dataclass(frozen=True, slots=True)
class Line:
    """One line cut from the byte stream: its text (stripped), or why it is unusable."""

    text: str | None
    error: str | None = None


class LineFramer:
    """Cuts lines off the front of a byte buffer (pure; see rule 1 of the module).

    Args:
        line_ending: `lf` ends lines at LF and drops a CR before it (LF and CR LF devices);
            `cr` ends lines at CR and drops an LF after it (CR and CR LF devices).
        max_line_bytes: Longer lines are reported as `line_too_long` and skipped to their end.
        encoding: How line bytes become text; bytes that do not decode give `decode_error`.
    """

    def __init__(
        self,
        *,
        line_ending: LineEnding = "lf",
        max_line_bytes: int = 1024,
        encoding: str = "ascii",
    ) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be at least 1, got {max_line_bytes}")
        self._end = b"\n" if line_ending == "lf" else b"\r"
        self._strip = b"\r\n"
        self._max = max_line_bytes
        self._encoding = encoding
        self._discarding = False

    def reset(self) -> None:
        """Forget a partly skipped overlong line (call when the port is reopened)."""
        self._discarding = False

    def read(self, buffer: bytes | bytearray) -> tuple[Line | None, int]:  # noqa: PLR0911 - one return per case of rule 1
        """Cut the first line off `buffer`: `(line or None, bytes consumed)`."""
        end = buffer.find(self._end)
        if self._discarding:
            if end < 0:
                return None, len(buffer)
            self._discarding = False
            return None, end + 1
        if end < 0:
            if len(buffer) > self._max:
                self._discarding = True
                return Line(None, "line_too_long"), len(buffer)
            return None, 0
        if end > self._max:
            return Line(None, "line_too_long"), end + 1
        raw = bytes(buffer[:end]).strip(self._strip)
        if not raw.strip():
            return None, end + 1
        try:
            text = raw.decode(self._encoding).strip()
        except UnicodeDecodeError:
            return Line(None, "decode_error"), end + 1
        return Line(text), end + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class LineField:
    """How one parsed text field becomes a signal value.

    Attributes:
        signal: Signal name in the readings.
        kind: `float` and `int` parse a number and apply `value * scale + offset` (`int` rounds
            the result); `str` keeps the text.
        scale: Multiplier for numbers.
        offset: Added after scaling.
    """

    signal: str
    kind: Literal["float", "int", "str"] = "float"
    scale: float = 1.0
    offset: float = 0.0

    def convert(self, text: str) -> tuple[Value | None, str | None]:
        """The value of `text`, or None and the reason (`not_a_number`)."""
        text = text.strip()
        if self.kind == "str":
            return text, None
        try:
            number = float(text)
        except ValueError:
            return None, "not_a_number"
        value = number * self.scale + self.offset
        if not math.isfinite(value):
            return None, "not_a_number"
        return (round(value) if self.kind == "int" else value), None


class LineParser(Protocol):
    """Turns one line of text into readings (pure, stateless, so any call order is fine)."""

    @property
    def signals(self) -> tuple[str, ...]:
        """Every signal a good line carries, in order; fixed at construction, read at any time."""
        ...

    def parse(self, text: str, *, asset: str, ts_ms: int) -> list[Reading]:
        """One reading per signal, good or bad with the reason; never raises on the text.

        Called once per line by the source's task; being pure, it may also run concurrently.
        """
        ...


def bad_readings(parser: LineParser, reason: str, *, asset: str, ts_ms: int) -> list[Reading]:
    """A bad reading with `reason` for every signal of `parser`."""
    return [Reading.bad(asset, signal, ts_ms, reason) for signal in parser.signals]


def _readings(
    fields: Sequence[LineField], texts: Mapping[str, str | None], *, asset: str, ts_ms: int
) -> list[Reading]:
    """Readings of `fields` from their texts keyed by signal (None: the field was absent)."""
    out: list[Reading] = []
    for field in fields:
        text = texts.get(field.signal)
        if text is None:
            out.append(Reading.bad(asset, field.signal, ts_ms, "missing_field"))
            continue
        value, reason = field.convert(text)
        if reason is not None or value is None:
            out.append(Reading.bad(asset, field.signal, ts_ms, reason or "not_a_number"))
        else:
            out.append(Reading(asset, field.signal, ts_ms, value))
    return out


class RegexParser:
    r"""Named groups of a regular expression become signals (`re.search`, so it may match inside).

    Args:
        pattern: A regular expression with named groups, e.g. `T=(?P<temp>[-\d.]+)`.
        fields: Group name to field; None makes every named group a `float` signal of its name.

    Raises:
        ValueError: The pattern does not compile, has no named group, or `fields` names a group
            the pattern lacks.
    """

    def __init__(self, *, pattern: str, fields: Mapping[str, LineField] | None = None) -> None:
        try:
            self._regex = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {pattern!r} does not compile: {exc}") from exc
        groups = list(self._regex.groupindex)
        if not groups:
            raise ValueError(f"pattern {pattern!r} has no named group (?P<name>...)")
        fields = dict(fields) if fields is not None else {g: LineField(signal=g) for g in groups}
        if unknown := sorted(set(fields) - set(groups)):
            raise ValueError(f"fields {unknown} are not named groups of {pattern!r}")
        self._by_group = fields

    @property
    def signals(self) -> tuple[str, ...]:
        """Signals in field order."""
        return tuple(field.signal for field in self._by_group.values())

    def parse(self, text: str, *, asset: str, ts_ms: int) -> list[Reading]:
        """See `LineParser.parse`; a line the pattern does not match is `no_match`."""
        match = self._regex.search(text)
        if match is None:
            return bad_readings(self, "no_match", asset=asset, ts_ms=ts_ms)
        texts = {field.signal: match.group(g) for g, field in self._by_group.items()}
        return _readings(list(self._by_group.values()), texts, asset=asset, ts_ms=ts_ms)


class KeyValueParser:
    """`key=value` pairs become signals; keys not configured are ignored.

    Args:
        fields: Key to field.
        pair_separator: Between pairs; None means any run of whitespace.
        separator: Between a key and its value.
    """

    def __init__(
        self,
        *,
        fields: Mapping[str, LineField],
        pair_separator: str | None = None,
        separator: str = "=",
    ) -> None:
        if not fields:
            raise ValueError("fields must name at least one key")
        if not separator:
            raise ValueError("separator must not be empty")
        self._fields = dict(fields)
        self._pair_sep = pair_separator
        self._sep = separator

    @property
    def signals(self) -> tuple[str, ...]:
        """Signals in field order."""
        return tuple(field.signal for field in self._fields.values())

    def parse(self, text: str, *, asset: str, ts_ms: int) -> list[Reading]:
        """See `LineParser.parse`; a line without any `key=value` pair is `no_match`."""
        pairs: dict[str, str] = {}
        for item in text.split(self._pair_sep):
            key, sep, value = item.partition(self._sep)
            if sep:
                pairs[key.strip()] = value
        if not pairs:
            return bad_readings(self, "no_match", asset=asset, ts_ms=ts_ms)
        texts = {field.signal: pairs.get(key) for key, field in self._fields.items()}
        return _readings(list(self._fields.values()), texts, asset=asset, ts_ms=ts_ms)


class CsvParser:
    """Delimited columns become signals, by position; `None` columns are skipped.

    Args:
        columns: One entry per column: its field, or None to ignore the column.
        delimiter: One character between columns (quotes follow the csv module's rules).
    """

    def __init__(self, *, columns: Sequence[LineField | None], delimiter: str = ",") -> None:
        if not any(column is not None for column in columns):
            raise ValueError("columns must name at least one signal")
        if len(delimiter) != 1:
            raise ValueError(f"delimiter must be one character, got {delimiter!r}")
        self._columns = list(columns)
        self._fields = [column for column in columns if column is not None]
        self._delimiter = delimiter

    @property
    def signals(self) -> tuple[str, ...]:
        """Signals in column order."""
        return tuple(field.signal for field in self._fields)

    def parse(self, text: str, *, asset: str, ts_ms: int) -> list[Reading]:
        """See `LineParser.parse`; absent trailing columns are `missing_field`."""
        try:
            cells = next(csv.reader([text], delimiter=self._delimiter, strict=True), [])
        except csv.Error:
            return bad_readings(self, "no_match", asset=asset, ts_ms=ts_ms)
        texts = {
            column.signal: (cells[index] if index < len(cells) else None)
            for index, column in enumerate(self._columns)
            if column is not None
        }
        return _readings(self._fields, texts, asset=asset, ts_ms=ts_ms)


# ---------------------------------------------------------------- I/O


class LineStream(Protocol):
    """An open byte stream to a line device (the serial port, or a test double).

    One task uses it at a time: `read()` and `write()` never overlap, `close()` comes last.
    """

    async def read(self) -> bytes:
        """Wait for and return at least one byte; raises `OSError` when the port fails.

        Called repeatedly by the source's task, never concurrently; it may be cancelled (the
        source's timeouts), and must then leave the stream usable.
        """
        ...

    def write(self, data: bytes) -> None:
        """Send bytes (a prompt); raises `OSError` when the port fails.

        Called from the source's task between reads, never while a `read()` is awaited.
        """
        ...

    def close(self) -> None:
        """Close the port; called once, last (idempotent all the same)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialSettings:
    """Where and how to open a serial port (pyserial names and values)."""

    port: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1


class _PySerialStream:
    """pyserial in non-blocking mode, woken by the event loop's reader on its file descriptor."""

    def __init__(self, port: serial.SerialBase) -> None:
        self._port = port

    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            data: bytes = self._port.read(max(1, self._port.in_waiting))
            if data:
                return data
            ready: asyncio.Future[None] = loop.create_future()
            fd = self._port.fileno()
            loop.add_reader(fd, _resolve, ready)
            try:
                await ready
            finally:
                loop.remove_reader(fd)

    def write(self, data: bytes) -> None:
        self._port.write(data)

    def close(self) -> None:
        self._port.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def pyserial_opener(settings: SerialSettings) -> Callable[[], Awaitable[LineStream]]:
    """The default way a `SerialLineSource` opens its port (pyserial, exclusive, non-blocking)."""

    async def open_port() -> LineStream:
        port = serial.serial_for_url(
            settings.port,
            baudrate=settings.baudrate,
            bytesize=settings.bytesize,
            parity=settings.parity,
            stopbits=settings.stopbits,
            timeout=0,
            exclusive=True,
        )
        return _PySerialStream(port)

    return open_port


class SerialLineSource:
    """One line-oriented ASCII device on its own serial port: a `Source`.

    Args:
        name: Device name (also the source name: the task is `edge[{name}].poll`).
        asset: Asset id its readings carry.
        settings: The serial port.
        parser: Turns a line into readings.
        framer: Cuts lines; default `LineFramer()` (LF, ASCII, 1024 bytes).
        timeout_s: A device silent this long is down (`timeout`), and again every `timeout_s`.
        request: Bytes written every `request_interval_s` for devices that answer on request;
            None for devices that send by themselves.
        request_interval_s: Period of `request`.
        startup_error_behavior: If the device is down at start: `error` raises
            `DeviceStartupError`, `ignore` ends `run()`, `retry` keeps trying.
        backoff_initial_s: First wait before reopening a failed port.
        backoff_max_s: Longest wait before reopening.
        open_stream: Opens the port; default `pyserial_opener(settings)`. Tests inject others.
        trace: Field-debugging hook `(sending, data)` for prompts sent and bytes received.
        wall_clock_ms: Epoch milliseconds for readings.
    """

    def __init__(
        self,
        *,
        name: str,
        asset: str,
        settings: SerialSettings,
        parser: LineParser,
        framer: LineFramer | None = None,
        timeout_s: float = 10.0,
        request: bytes | None = None,
        request_interval_s: float = 1.0,
        startup_error_behavior: StartupErrorBehavior = "retry",
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 300.0,
        open_stream: Callable[[], Awaitable[LineStream]] | None = None,
        trace: Callable[[bool, bytes], None] | None = None,
        wall_clock_ms: Callable[[], int] | None = None,
    ) -> None:
        if timeout_s <= 0 or request_interval_s <= 0:
            raise ValueError("timeout_s and request_interval_s must be > 0")
        self._name = name
        self._asset = asset
        self._parser = parser
        self._framer = framer or LineFramer()
        self._timeout_s = timeout_s
        self._request = request
        self._request_interval_s = request_interval_s
        self._startup = startup_error_behavior
        self._backoff = Backoff(
            initial_s=backoff_initial_s, max_s=max(backoff_max_s, backoff_initial_s)
        )
        self._open = open_stream or pyserial_opener(settings)
        self._trace = trace
        self._wall_ms = wall_clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._state = DeviceState(name=name, asset=asset)
        self._stream: LineStream | None = None

    @property
    def name(self) -> str:
        """The device name."""
        return self._name

    @property
    def states(self) -> Mapping[str, DeviceState]:
        """The device's runtime state, keyed by its name."""
        return {self._name: self._state}

    async def run(self, emit: Emit) -> None:
        """Read lines until cancelled (see `Source.run`)."""
        while True:
            if self._backoff.retry_at is not None:
                await asyncio.sleep(max(0.0, self._backoff.retry_at - time.monotonic()))
            try:
                stream = self._stream = await self._open()
            except OSError:
                if not self._failed("disconnected", emit):
                    return
                self._backoff.failed(time.monotonic())
                continue
            self._framer.reset()
            try:
                if not await self._session(stream, emit):
                    return
            except OSError:
                if not self._failed("disconnected", emit):
                    return
                self._backoff.failed(time.monotonic())
            finally:
                stream.close()
                self._stream = None

    async def _session(self, stream: LineStream, emit: Emit) -> bool:
        """Read from an open port until it fails (raises OSError); False: stop the source."""
        buffer = bytearray()
        now = time.monotonic()
        stale_at = now + self._timeout_s
        prompt_at = now if self._request is not None else math.inf
        while True:
            now = time.monotonic()
            if now >= prompt_at and self._request is not None:
                self._send(stream, self._request)
                prompt_at = max(prompt_at + self._request_interval_s, now)
            if now >= stale_at:
                if not self._failed("timeout", emit):
                    return False
                stale_at = now + self._timeout_s
            try:
                async with asyncio.timeout(max(0.0, min(stale_at, prompt_at) - now)):
                    chunk = await stream.read()
            except TimeoutError:
                continue
            if self._trace is not None:
                self._trace(False, chunk)  # noqa: FBT003 - the trace hook's (sending, data) shape
            buffer += chunk
            while True:
                line, used = self._framer.read(buffer)
                if used == 0:
                    break
                del buffer[:used]
                if line is not None:
                    self._line(line, emit)
                    stale_at = time.monotonic() + self._timeout_s

    def _send(self, stream: LineStream, data: bytes) -> None:
        if self._trace is not None:
            self._trace(True, data)  # noqa: FBT003 - the trace hook's (sending, data) shape
        stream.write(data)
        self._state.counters.requests += 1

    def _line(self, line: Line, emit: Emit) -> None:
        ts_ms = self._wall_ms()
        if line.text is None:
            readings = bad_readings(
                self._parser, line.error or "bad_line", asset=self._asset, ts_ms=ts_ms
            )
        else:
            readings = self._parser.parse(line.text, asset=self._asset, ts_ms=ts_ms)
        counters = self._state.counters
        good = sum(1 for reading in readings if reading.quality is Quality.GOOD)
        counters.readings_good += good
        counters.readings_bad += len(readings) - good
        for reason in {r.reason for r in readings if r.reason is not None}:
            counters.errors[reason] += 1
        if good < len(readings):
            _log.debug("line_unparsed", device=self._name, line=line.text, error=line.error)
        self._backoff.succeeded()
        log_transition(self._state, self._state.record_success(now_ms=ts_ms))
        emit(readings)

    def _failed(self, reason: str, emit: Emit) -> bool:
        """Record a failure, emit bad readings; False when the source must stop (`ignore`)."""
        ts_ms = self._wall_ms()
        first = self._state.available is None
        self._state.counters.errors[reason] += 1
        transition = self._state.record_failure(reason=reason, now_ms=ts_ms)
        emit(bad_readings(self._parser, reason, asset=self._asset, ts_ms=ts_ms))
        if first and self._startup == "error":
            raise DeviceStartupError(device=self._name, reason=reason)
        if first and self._startup == "ignore":
            _log.warning("device_ignored", device=self._name, asset=self._asset, reason=reason)
            return False
        log_transition(self._state, transition)
        return True

    async def aclose(self) -> None:
        """Close the port if `run()` was cancelled with it open (see `Source.aclose`)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
