"""The exceptions voicecli raises on purpose, each carrying one sentence a user can act on.

    VoiceCliError               any error the CLI prints as one line and exits on
    ├── UsageError              bad flags or values (exit 2)
    ├── ConfigError             bad config file, key or value (exit 2)
    ├── AudioError              PortAudio missing, no/unknown device, unsupported settings
    └── ConnectError            the session could not be opened or was closed on us
        ├── UnreachableError    DNS failure, refused connection, timeout
        ├── AuthError           HTTP 401/403 at the handshake, or an auth error right after
        ├── HandshakeError      any other refused or malformed handshake (wrong server)
        ├── BetaShapeDisabled   close 4000 `beta_api_shape_disabled`
        └── SessionExpired      `session_expired` followed by close 1001

The CLI catches `VoiceCliError` at the top and prints `voicecli: <message>` on stderr. Nothing
here imports anything beyond the standard library.
"""

from __future__ import annotations


__all__ = [
    "AudioError",
    "AuthError",
    "BetaShapeDisabled",
    "ConfigError",
    "ConnectError",
    "HandshakeError",
    "SessionExpired",
    "UnreachableError",
    "UsageError",
    "VoiceCliError",
]


class VoiceCliError(Exception):
    """An error with a message fit for a user: one sentence, no traceback."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(VoiceCliError):
    exit_code = 2


class ConfigError(VoiceCliError):
    exit_code = 2


class AudioError(VoiceCliError):
    exit_code = 2


class ConnectError(VoiceCliError):
    exit_code = 2
    recoverable = False
    """Whether reconnecting may help (network blips) or not (bad key, beta shape disabled)."""


class UnreachableError(ConnectError):
    recoverable = True


class AuthError(ConnectError):
    pass


class HandshakeError(ConnectError):
    pass


class BetaShapeDisabled(ConnectError):
    pass


class SessionExpired(ConnectError):
    recoverable = True
