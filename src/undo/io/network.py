"""Whether a server answers, decided in seconds: a launch asks once instead of letting a client retry for
minutes."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 5.0


def unreachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when a TCP connection to the URL's host opens, else why not."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as err:
        return str(err) or type(err).__name__
    return None
