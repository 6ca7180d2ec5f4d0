"""Loading profiles, and the library: selection by model and firmware, identification.

`parse_profile` and `load_profile` turn one YAML document into a `Profile` (or one
`ProfileError` listing every issue). `ProfileLibrary` holds a folder of them, refuses two that a
device could match both, and finds a device's profile by name, by model and firmware, or from
its identification registers (`ProfileLibrary.identification_requests`, then the pure
`ProfileLibrary.select`, which returns a `Selection`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from edge_agent._model import BlockResult, ReadRequest
from edge_agent._profile._errors import ProfileError, ProfileIssue, _issues, _parse_yaml
from edge_agent._profile._model import FirmwareRegister, Identification, Profile
from edge_agent.codecs import make_decoder, word_count

# ---------------------------------------------------------------------------------------------
# Loading


def parse_profile(text: str, *, path: str = "<profile>") -> Profile:
    """Validate the YAML text of a profile.

    Args:
        text: The YAML document.
        path: The name to use in error messages.

    Returns:
        The profile, its aliases canonicalised and defaults applied.

    Raises:
        ProfileError: the text is not YAML or breaks a rule; every issue is in the message.
    """
    data = _parse_yaml(text, path)
    if not isinstance(data, dict):
        rule = "must be a mapping of profile keys (vendor, model, firmware, signals, ...)"
        raise ProfileError.from_issues(path, [ProfileIssue("", f"the document {rule}", data)])
    try:
        return Profile.model_validate(data, context={"path": path})
    except ValidationError as exc:
        raise ProfileError.from_issues(path, _issues(exc, text)) from None


def load_profile(path: str | Path) -> Profile:
    """Read and validate one profile file.

    Args:
        path: The YAML file; error messages name it as given.

    Returns:
        The profile; `Profile.path` is ``path``.

    Raises:
        ProfileError: the file cannot be read, is not YAML, or breaks a rule.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ProfileError(f"{path}: cannot read the profile: {reason}.", path=str(path)) from None
    return parse_profile(text, path=str(path))


# ---------------------------------------------------------------------------------------------
# The library: all profiles, selection by model and firmware, identification


@dataclass(frozen=True, slots=True)
class Selection:
    """The outcome of identifying a device: the chosen profile, or why there is none.

    Attributes:
        profile: The one profile that matched, or None.
        reason: One line: what matched, or why nothing (or more than one profile) did.
        details: One line per profile with identification registers: what the device reported
            and how it compared.
    """

    profile: Profile | None
    reason: str
    details: tuple[str, ...] = ()


def _model_code_request(ident: Identification, unit: int) -> ReadRequest:
    code = ident.model_code
    count = word_count(code.type, length_words=code.length_words)
    return ReadRequest(code.kind, unit, code.address, count)


def _firmware_request(register: FirmwareRegister, unit: int) -> ReadRequest:
    return ReadRequest(register.kind, unit, register.address, register.length_words or 1)


def _decode_firmware(register: FirmwareRegister, words: Sequence[int]) -> str:
    """The version text a firmware register carries (raises ValueError for garbage)."""
    if register.format == "text":
        text = make_decoder(
            "string", byte_order=register.byte_order, length_words=register.length_words
        )(words)
        return str(text).strip()
    word = int(make_decoder("uint16", byte_order=register.byte_order)(words))
    high, low = word >> 8, word & 0xFF
    if register.format == "major_minor_bytes":
        return f"{high}.{low}"
    if register.format == "hundredths":
        return f"{word // 100}.{word % 100:02d}"
    digits = [high >> 4, high & 0xF, low >> 4, low & 0xF]
    if any(digit > 9 for digit in digits):  # noqa: PLR2004 - a BCD digit is 0..9
        raise ValueError(f"0x{word:04X} is not BCD")
    return f"{digits[0] * 10 + digits[1]}.{digits[2] * 10 + digits[3]}"


def _show_code(value: object) -> str:
    return f"{value} (0x{value:04X})" if isinstance(value, int) and value >= 0 else repr(value)


class ProfileLibrary:
    """Every profile of a folder, with selection by model and firmware or by identification.

    Args:
        profiles: The profiles.

    Raises:
        ProfileError: two profiles of one model have overlapping firmware (the message names
            both files).
    """

    def __init__(self, profiles: Iterable[Profile]) -> None:
        self._profiles = tuple(profiles)
        problems = []
        for index, profile in enumerate(self._profiles):
            for earlier in self._profiles[:index]:
                if earlier.model.casefold() != profile.model.casefold():
                    continue
                if not earlier.firmware_spec.overlaps(profile.firmware_spec):
                    continue
                verb = (
                    "is already declared by"
                    if earlier.firmware_spec == profile.firmware_spec
                    else f"overlaps firmware {earlier.firmware!r} of"
                )
                problems.append(
                    f"{_where(profile)}: model {profile.model!r} firmware {profile.firmware!r} "
                    f"{verb} {_where(earlier)}; a device could match both."
                )
        if problems:
            raise ProfileError("\n".join(problems), path=_where(self._profiles[0]))

    @classmethod
    def load(cls, directory: str | Path) -> ProfileLibrary:
        """Load every ``*.yaml`` and ``*.yml`` profile of ``directory`` (not its subfolders).

        Args:
            directory: The folder, e.g. ``firmware_profiles``.

        Returns:
            The library.

        Raises:
            ProfileError: the folder is missing or empty, a file is invalid (every invalid file is
                reported, one message), or two profiles overlap.
        """
        folder = Path(directory)
        if not folder.is_dir():
            raise ProfileError(f"{directory}: no such profile folder.", path=str(directory))
        files = sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())
        if not files:
            raise ProfileError(f"{directory}: holds no profile (*.yaml).", path=str(directory))
        profiles, errors = [], []
        for file in files:
            try:
                profiles.append(load_profile(file))
            except ProfileError as exc:
                errors.append(exc)
        if errors:
            raise ProfileError(
                "\n".join(str(error) for error in errors),
                path=errors[0].path,
                key=errors[0].key,
                issues=[issue for error in errors for issue in error.issues],
            )
        return cls(profiles)

    @property
    def profiles(self) -> tuple[Profile, ...]:
        """Every profile, in load order."""
        return self._profiles

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._profiles)

    def __len__(self) -> int:
        return len(self._profiles)

    def find(self, *, model: str, firmware: str) -> Profile:
        """Return the profile for ``model`` (case-insensitive) at firmware version ``firmware``.

        Raises:
            ProfileError: no profile covers them; the message lists what the library has.
        """
        for profile in self._profiles:
            if profile.matches(model=model, firmware=firmware):
                return profile
        same_model = [p for p in self._profiles if p.model.casefold() == model.casefold()]
        if same_model:
            covered = ", ".join(f"{p.firmware!r} ({_where(p)})" for p in same_model)
            message = f"no profile for model {model!r} firmware {firmware!r}; it has {covered}."
        else:
            known = ", ".join(sorted({repr(p.model) for p in self._profiles}))
            message = f"no profile for model {model!r}; known models: {known}."
        raise ProfileError(message, key="model")

    def get(self, profile_id: str) -> Profile:
        """Return the profile whose `Profile.profile_id` (file stem) is ``profile_id``.

        Raises:
            ProfileError: no such profile.
        """
        for profile in self._profiles:
            if profile.profile_id == profile_id:
                return profile
        known = ", ".join(sorted(p.profile_id for p in self._profiles))
        raise ProfileError(f"no profile {profile_id!r}; known profiles: {known}.", key="profile")

    def identification_requests(self, *, unit: int) -> tuple[ReadRequest, ...]:
        """The reads that identify a device at ``unit``: every identification register once.

        Each register is read on its own, never merged: profiles of different vendors put them at
        different addresses, and a merged read that touches an address the device lacks fails as
        a whole (exception 2), hiding the registers it does have.
        """
        requests: dict[ReadRequest, None] = {}
        for profile in self._profiles:
            ident = profile.identification
            if ident is None:
                continue
            requests[_model_code_request(ident, unit)] = None
            if ident.firmware_version is not None:
                requests[_firmware_request(ident.firmware_version, unit)] = None
        return tuple(requests)

    def select(self, results: Mapping[ReadRequest, BlockResult], *, unit: int) -> Selection:
        """Choose the profile whose identification registers match what the device answered.

        Pure: ``results`` holds the answers to `identification_requests` (missing or failed ones
        count as "does not match").

        Args:
            results: Answers keyed by request.
            unit: The unit id the requests were sent to.

        Returns:
            The selection: one profile, or None with the reason and per-profile details.
        """
        matched: list[Profile] = []
        details: list[str] = []
        for profile in self._profiles:
            verdict = _identify(profile, results, unit)
            if verdict is None:
                matched.append(profile)
                details.append(f"{profile.profile_id}: matches")
            else:
                details.append(f"{profile.profile_id}: {verdict}")
        if len(matched) == 1:
            chosen = matched[0]
            return Selection(
                chosen,
                f"unit {unit} is {chosen.vendor} {chosen.model} firmware {chosen.firmware!r} "
                f"({chosen.profile_id})",
                tuple(details),
            )
        if matched:
            names = ", ".join(p.profile_id for p in matched)
            return Selection(None, f"unit {unit} matches several profiles: {names}", tuple(details))
        return Selection(
            None, f"no profile matches unit {unit}: " + "; ".join(details), tuple(details)
        )


def _where(profile: Profile) -> str:
    return str(profile.path) if profile.path is not None else profile.profile_id


def _identify(  # noqa: PLR0911 - one return per reason
    profile: Profile, results: Mapping[ReadRequest, BlockResult], unit: int
) -> str | None:
    """None if ``profile`` matches the answers, else why not."""
    ident = profile.identification
    if ident is None:
        return "declares no identification registers"
    code = ident.model_code
    request = _model_code_request(ident, unit)
    answer = results.get(request)
    where = f"model code ({code.kind} {code.address})"
    if answer is None or answer.words is None:
        return f"{where} not read ({answer.error if answer else 'no answer'})"
    try:
        decoder = make_decoder(
            code.type, byte_order=code.byte_order, length_words=code.length_words
        )
        reported = decoder(answer.words[: request.count])
    except ValueError:
        return f"{where} answer is unusable: {list(answer.words)!r}"
    if isinstance(reported, str):
        reported = reported.strip()
    if reported != code.equals:
        return f"{where} reads {_show_code(reported)}, expects {_show_code(code.equals)}"
    register = ident.firmware_version
    if register is None:
        return None
    request = _firmware_request(register, unit)
    answer = results.get(request)
    where = f"firmware ({register.kind} {register.address})"
    if answer is None or answer.words is None:
        return f"{where} not read ({answer.error if answer else 'no answer'})"
    try:
        version = _decode_firmware(register, answer.words[: request.count])
    except ValueError as exc:
        return f"{where} answer is unusable: {exc}"
    if version not in profile.firmware_spec:
        return f"model matches, but firmware {version!r} is not in {profile.firmware!r}"
    return None
