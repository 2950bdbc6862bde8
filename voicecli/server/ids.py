"""Identifiers in the formats the real Realtime API uses.

`event_`, `item_`, `resp_`, `sess_` and `conv_` are followed by 21 alphanumerics, `call_` by
16 (observed in captures, protocol reference §10). A seeded `random.Random` makes them
reproducible in tests.
"""

from __future__ import annotations

import random
import string


__all__ = ["IdFactory"]

_ALPHABET = string.ascii_letters + string.digits
_LENGTHS = {"event": 21, "item": 21, "resp": 21, "sess": 21, "conv": 21, "call": 16}


class IdFactory:
    """Makes fresh ids such as `event_u8jzPde0IgxLd6GncfBAe` from one random source."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def new(self, prefix: str) -> str:
        length = _LENGTHS[prefix]
        return prefix + "_" + "".join(self._rng.choices(_ALPHABET, k=length))

    def event(self) -> str:
        return self.new("event")

    def item(self) -> str:
        return self.new("item")

    def response(self) -> str:
        return self.new("resp")

    def session(self) -> str:
        return self.new("sess")

    def conversation(self) -> str:
        return self.new("conv")

    def call(self) -> str:
        return self.new("call")

    def padding(self, length: int) -> str:
        """Random alphanumerics, like the GA `obfuscation` field on deltas."""
        return "".join(self._rng.choices(_ALPHABET, k=length))
