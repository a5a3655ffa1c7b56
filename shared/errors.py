"""Errors that end a command with one clear line instead of a traceback."""

from __future__ import annotations


class MuttError(Exception):
    """An expected failure with a message meant for the operator."""

    exit_code = 1


class ConfigError(MuttError):
    """A static setting is missing or invalid."""

    exit_code = 2


class UnreachableError(MuttError):
    """Redis or PostgreSQL cannot be reached."""

    exit_code = 3


class PortInUseError(MuttError):
    """The HTTP port is already taken."""

    exit_code = 4
