"""The installed version of asyncgroups."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("asyncgroups")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
