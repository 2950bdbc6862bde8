"""The session driver's pure parts: URL building, settings, close classification over every
close code, handshake-exception mapping, and the reconnect backoff generator."""

from __future__ import annotations

import random
import socket
import ssl
from pathlib import Path

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.http11 import Response

from voicecli.config import load_config
from voicecli.errors import (
    AuthError,
    BetaShapeDisabled,
    ConnectError,
    HandshakeError,
    SessionExpired,
    UnreachableError,
    UsageError,
)
from voicecli.protocol.dialects import BETA, GA
from voicecli.protocol.events import ErrorInfo
from voicecli.session import (
    RECOVERABLE_CLOSE_CODES,
    ConnectionSettings,
    backoff,
    build_url,
    classify_close,
    handshake_error,
)


# --- URLs and settings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, "wss://api.openai.com/v1/realtime?model=gpt-realtime"),
        ("", "wss://api.openai.com/v1/realtime?model=gpt-realtime"),
        ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765?model=gpt-realtime"),
        ("ws://127.0.0.1:8765/v1/realtime", "ws://127.0.0.1:8765/v1/realtime?model=gpt-realtime"),
        ("wss://h.example/rt?model=other", "wss://h.example/rt?model=other"),
        ("wss://h.example/rt?deployment=x", "wss://h.example/rt?deployment=x&model=gpt-realtime"),
        ("wss://h.example/rt?intent=transcription", "wss://h.example/rt?intent=transcription"),
        ("wss://h.example/rt?call_id=rtc_1", "wss://h.example/rt?call_id=rtc_1"),
    ],
)
def test_build_url(url: str | None, expected: str) -> None:
    assert build_url(url, "gpt-realtime") == expected


def test_model_is_quoted_in_the_default_url() -> None:
    assert build_url(None, "a b&c") == "wss://api.openai.com/v1/realtime?model=a+b%26c"


@pytest.mark.parametrize(
    "url", ["http://x", "https://api.openai.com/v1/realtime", "garbage", "ws://", "ws://h:99999/"]
)
def test_anything_but_a_websocket_url_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        build_url(url, "m")
    assert repr(url) in str(caught.value)
    with pytest.raises(UsageError):
        ConnectionSettings(url=url)


def test_settings_headers_and_display_url() -> None:
    ga = ConnectionSettings(url="ws://127.0.0.1:9/rt?x=1", api_key="sk-secret-value")
    assert ga.headers() == {"Authorization": "Bearer sk-secret-value"}
    assert ga.display_url == "ws://127.0.0.1:9/rt"
    assert "sk-secret-value" not in repr(ga)
    beta = ConnectionSettings(dialect="beta")
    assert beta.dialect is BETA
    assert beta.headers() == {"OpenAI-Beta": "realtime=v1"}
    assert beta.display_url == "wss://api.openai.com/v1/realtime"
    with pytest.raises(UsageError, match="unknown dialect 'gamma'"):
        ConnectionSettings(dialect="gamma")


def test_display_url_drops_credentials_in_the_url() -> None:
    proxied = ConnectionSettings(url="wss://me:sk-in-url-123@proxy.example:8443/rt?key=sk-q")
    assert proxied.display_url == "wss://proxy.example:8443/rt"


def test_settings_from_config(tmp_path: Path) -> None:
    def config(**env: str):  # noqa: ANN202
        return load_config({}, {"HOME": str(tmp_path), **env}, None, dotenv_path=None)

    key = "sk-from-env-0123456789abcdef"
    local = ConnectionSettings.from_config(config(), url="ws://127.0.0.1:5/")
    assert (local.url, local.api_key) == ("ws://127.0.0.1:5/", None)  # never to the local server
    with pytest.raises(ValueError, match="local server's url is needed"):
        ConnectionSettings.from_config(config())
    openai = ConnectionSettings.from_config(
        config(
            OPENAI_API_KEY=key, VOICECLI_CONNECTION_DIALECT="beta", VOICECLI_CONNECTION_MODEL="m"
        )
    )
    assert (openai.url, openai.api_key, openai.model, openai.dialect) == (None, key, "m", BETA)
    assert openai.endpoint == "wss://api.openai.com/v1/realtime?model=m"
    proxy = ConnectionSettings.from_config(
        config(OPENAI_API_KEY=key, VOICECLI_CONNECTION_URL="wss://proxy.example/rt")
    )
    assert (proxy.url, proxy.api_key, proxy.dialect) == ("wss://proxy.example/rt", key, GA)


# --- close classification --------------------------------------------------------------------

ALL_CODES = [
    1000,
    1001,
    1002,
    1003,
    1005,
    1006,
    1007,
    1008,
    1009,
    1010,
    1011,
    1012,
    1013,
    1014,
    1015,
    3000,
    4000,
    4001,
    4999,
]


def err(
    code: str | None, error_type: str = "invalid_request_error", message: str = "m."
) -> ErrorInfo:
    return ErrorInfo(type=error_type, code=code, message=message)


@pytest.mark.parametrize("code", ALL_CODES)
def test_plain_close_codes(code: int) -> None:
    error = classify_close(code, "some reason", None)
    assert type(error) is ConnectError
    assert error.recoverable == (code in {1001, 1005, 1006, 1011, 1012, 1013, 1015})
    assert f"(code {code}" in str(error) and str(error).endswith(": some reason")
    assert (error.close_code, error.close_reason) == (code, "some reason")


def test_the_recoverable_list_is_the_sdk_list() -> None:
    assert RECOVERABLE_CLOSE_CODES == {1001, 1005, 1006, 1011, 1012, 1013, 1015}


@pytest.mark.parametrize("code", ALL_CODES)
@pytest.mark.parametrize(
    "last_error", [None, err("response_cancel_not_active"), err("server_error", "server_error")]
)
def test_unrelated_errors_do_not_change_the_classification(
    code: int, last_error: ErrorInfo | None
) -> None:
    error = classify_close(code, "", last_error)
    if code == 4000:
        assert type(error) is BetaShapeDisabled  # 4000 without a reason: OpenAI's beta shutdown
    else:
        assert type(error) is ConnectError
        assert error.recoverable == (code in RECOVERABLE_CLOSE_CODES)
        if last_error is not None:
            assert str(error).endswith(f"after error {last_error.code}: m")


@pytest.mark.parametrize("code", ALL_CODES)
def test_beta_shape_disabled_by_reason_or_error_code(code: int) -> None:
    by_reason = classify_close(code, "invalid_request_error.beta_api_shape_disabled", None)
    by_error = classify_close(code, "", err("beta_api_shape_disabled"))
    for error in (by_reason, by_error):
        assert type(error) is BetaShapeDisabled
        assert str(error) == (
            "the server no longer accepts the beta dialect (close 4000 beta_api_shape_disabled); "
            "use --dialect ga"
        )
        assert not error.recoverable


def test_4000_with_another_reason_is_not_the_beta_shutdown() -> None:
    error = classify_close(4000, "custom server reason", None)
    assert type(error) is ConnectError and not error.recoverable


def test_session_expired() -> None:
    reason = "Your session hit the maximum duration of 60 minutes."
    by_both = classify_close(1001, reason, err("session_expired", message=reason))
    by_reason_only = classify_close(1001, reason, None)
    by_error_only = classify_close(1000, "", err("session_expired", message=reason))
    expected = (
        "the session reached the server's time limit (Your session hit the maximum duration of "
        "60 minutes); start a new session"
    )
    for error in (by_both, by_reason_only, by_error_only):
        assert type(error) is SessionExpired and error.recoverable
        assert str(error) == expected
    plain_1001 = classify_close(1001, "going away for maintenance", None)
    assert type(plain_1001) is ConnectError and plain_1001.recoverable


@pytest.mark.parametrize("code", [1000, 1008, 1006, 4001])
@pytest.mark.parametrize(
    "last_error",
    [
        err("invalid_api_key", message="Incorrect API key provided: sk-abc***xyz."),
        err(None, error_type="authentication_error"),
        err("unauthorized"),
    ],
)
def test_auth_error_events_followed_by_a_close(code: int, last_error: ErrorInfo) -> None:
    error = classify_close(code, "", last_error)
    assert type(error) is AuthError and not error.recoverable
    assert str(error).startswith("the server rejected the API key (")
    assert "sk-abc" not in str(error)  # the server's message may quote the key: not repeated


# --- handshake exceptions --------------------------------------------------------------------


def status(code: int, phrase: str) -> InvalidStatus:
    return InvalidStatus(Response(code, phrase, Headers(), b""))


URL = "ws://h.example:1/rt"
REFUSED_TWICE = (
    "Multiple exceptions: [Errno 111] Connect call failed ('::1', 1, 0, 0), "
    "[Errno 111] Connect call failed ('127.0.0.1', 1)"
)
NOT_A_SERVER = "instead of opening a WebSocket; is it a realtime server? (wrong url?)"


@pytest.mark.parametrize(
    ("exc", "kind", "recoverable", "message"),
    [
        (ConnectionRefusedError(111, "Connection refused"), UnreachableError, True,
         f"cannot reach {URL}: connection refused"),
        (OSError(REFUSED_TWICE), UnreachableError, True, f"cannot reach {URL}: connection refused"),
        (socket.gaierror(-2, "Name or service not known"), UnreachableError, True,
         f"cannot reach {URL}: the host name 'h.example' does not resolve"),
        (TimeoutError(), UnreachableError, True, f"cannot reach {URL}: no answer within 2.5 s"),
        (OSError(101, "Network is unreachable"), UnreachableError, True,
         f"cannot reach {URL}: network is unreachable"),
        (status(404, "Not Found"), HandshakeError, False,
         f"{URL} answered HTTP 404 Not Found {NOT_A_SERVER}"),
        (status(503, "Service Unavailable"), HandshakeError, True,
         f"{URL} answered HTTP 503 Service Unavailable {NOT_A_SERVER}"),
        (status(401, "Unauthorized"), AuthError, False,
         f"{URL} rejected the API key (HTTP 401 Unauthorized): the key is not valid; "
         "check OPENAI_API_KEY"),
        (status(403, "Forbidden"), AuthError, False,
         f"{URL} rejected the API key (HTTP 403 Forbidden): the key has no access to it; "
         "check OPENAI_API_KEY"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), HandshakeError, False,
         f"{URL}: the TLS handshake failed ([SSL: WRONG_VERSION_NUMBER] wrong version number)"),
        (InvalidMessage("did not receive a valid HTTP response"), HandshakeError, False,
         f"{URL} did not answer with a valid WebSocket handshake; is it a realtime server?"),
    ],
)  # fmt: skip
def test_handshake_errors(exc: BaseException, kind: type, recoverable: bool, message: str) -> None:
    error = handshake_error(exc, URL, open_timeout=2.5)
    assert type(error) is kind
    assert error.recoverable == recoverable
    assert str(error) == message


def test_eof_during_the_handshake_is_recoverable() -> None:
    exc = InvalidMessage("did not receive a valid HTTP response")
    exc.__cause__ = EOFError("connection closed while reading HTTP status line")
    assert handshake_error(exc, URL).recoverable


# --- backoff ---------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    delays = backoff(
        initial_delay=1.0, min_delay=1.0, max_delay=30.0, factor=2.0, rng=random.Random(7)
    )
    first, *rest = [next(delays) for _ in range(12)]
    assert 0 <= first <= 1.0
    for n, delay in enumerate(rest):
        nominal = min(1.0 * 2.0**n, 30.0)
        assert nominal / 2 <= delay <= nominal
    assert all(15.0 <= d <= 30.0 for d in rest[5:])  # capped from 2**5 = 32 on


def test_backoff_is_reproducible_with_a_seed_and_random_without() -> None:
    def take(rng: random.Random | None) -> list[float]:
        gen = backoff(rng=rng)
        return [next(gen) for _ in range(5)]

    assert take(random.Random(1)) == take(random.Random(1))
    assert take(None) != take(None)
