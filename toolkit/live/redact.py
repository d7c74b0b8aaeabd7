"""Keeping stream credentials out of logs, events, overlays and summaries."""

from __future__ import annotations

import re

# scheme://user:pass@host or scheme://token@host, anywhere in a text (a gst pipeline too).
_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://)([^/@\s]+)@")
# key=value secrets in query strings and GStreamer element properties (rtspsrc user-pw=...).
_SECRET_PARAMS = re.compile(
    r"\b(user-pw|user-id|password|passwd|pwd|pass|token|access_token|api_key|apikey|key|secret)"
    r"=([^&\s!;,]+)",
    re.IGNORECASE,
)
MASK = "***"


def redact_url(text: str) -> str:
    """``text`` with the credentials of any URL in it replaced by ``***``.

    Example:
        >>> redact_url("rtsp://admin:hunter2@10.0.0.5:554/stream?token=abc")
        'rtsp://***@10.0.0.5:554/stream?token=***'
    """
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", str(text))
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}={MASK}", text)
