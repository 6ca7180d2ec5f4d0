"""The installed distribution's version, one source for the agent and the cloud."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("prognos")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
