"""Plausible token counts for `response.done.usage` and `rate_limits.updated`.

The local server has no tokenizer, so it estimates the way OpenAI documents its rates:

* text: one token per 4 characters, rounded up (`text_tokens`);
* input audio: one token per 100 ms (10 tokens/s), for every audio item in the context;
* output audio: one token per 50 ms (20 tokens/s) of audio actually sent.

`input_tokens` covers the whole context the model would read when the response starts: the
instructions, the tool definitions (their JSON) and every conversation item. Cached tokens are
always 0 (nothing is cached here). A cancelled response counts only the output that was sent.

Pure: standard library only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from voicecli.server.conversation import Item


__all__ = [
    "TOKENS_LIMIT",
    "Usage",
    "audio_input_tokens",
    "audio_output_tokens",
    "context_usage",
    "rate_limits",
    "text_tokens",
]

REQUESTS_LIMIT = 5000
TOKENS_LIMIT = 40000


def text_tokens(text: str | None) -> int:
    return math.ceil(len(text) / 4) if text else 0


def audio_input_tokens(ms: float) -> int:
    return math.ceil(ms / 100) if ms > 0 else 0


def audio_output_tokens(ms: float) -> int:
    return math.ceil(ms / 50) if ms > 0 else 0


@dataclass(frozen=True, slots=True)
class Usage:
    input_text: int = 0
    input_audio: int = 0
    output_text: int = 0
    output_audio: int = 0

    @property
    def input_tokens(self) -> int:
        return self.input_text + self.input_audio

    @property
    def output_tokens(self) -> int:
        return self.output_text + self.output_audio

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_wire(self, dialect_name: str) -> dict[str, Any]:
        input_details: dict[str, Any] = {
            "text_tokens": self.input_text,
            "audio_tokens": self.input_audio,
            "cached_tokens": 0,
        }
        if dialect_name == "ga":
            input_details["image_tokens"] = 0
            input_details["cached_tokens_details"] = {
                "text_tokens": 0,
                "audio_tokens": 0,
                "image_tokens": 0,
            }
        return {
            "total_tokens": self.total_tokens,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "input_token_details": input_details,
            "output_token_details": {
                "text_tokens": self.output_text,
                "audio_tokens": self.output_audio,
            },
        }


def context_usage(
    instructions: str, tools: Iterable[Mapping[str, Any]], items: Iterable[Item]
) -> Usage:
    """Input tokens of the context a response reads (see module docstring)."""
    text = text_tokens(instructions)
    tool_list = list(tools)
    if tool_list:
        text += text_tokens(json.dumps(tool_list))
    audio = 0
    for item in items:
        if item.type == "function_call":
            text += text_tokens(item.name) + text_tokens(item.arguments)
        elif item.type == "function_call_output":
            text += text_tokens(item.output)
        for part in item.content:
            if part.is_audio:
                audio += audio_input_tokens(part.audio_ms)
            else:
                text += text_tokens(part.text)
    return Usage(input_text=text, input_audio=audio)


def rate_limits(requests_made: int, tokens_used: int) -> list[dict[str, Any]]:
    """The `rate_limits` list after a response: what this session used of a per-minute budget."""
    return [
        {
            "name": "requests",
            "limit": REQUESTS_LIMIT,
            "remaining": max(0, REQUESTS_LIMIT - requests_made),
            "reset_seconds": round(60 * requests_made / REQUESTS_LIMIT, 3),
        },
        {
            "name": "tokens",
            "limit": TOKENS_LIMIT,
            "remaining": max(0, TOKENS_LIMIT - tokens_used),
            "reset_seconds": round(60 * min(tokens_used, TOKENS_LIMIT) / TOKENS_LIMIT, 3),
        },
    ]
