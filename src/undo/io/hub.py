"""Hugging Face hub access: a model, tokenizer or dataset that cannot be fetched is one line naming it and the fix
(network, a token for a gated repository, or offline mode with a local cache), never a retry traceback."""

from __future__ import annotations

import os
from contextlib import contextmanager
from functools import lru_cache

from undo.errors import UserError
from undo.io.network import unreachable

FIX = (
    "check the network; for a gated repository accept its terms on huggingface.co and put a token in "
    "tokens/hf_token.txt (or HF_TOKEN); without a network set HF_HUB_OFFLINE=1 and keep it in the local cache"
)


def _is_hub_error(err: BaseException) -> bool:
    """Errors of the hub client or the HTTP stack below it (transformers and datasets re-raise some as OSError)."""
    module = type(err).__module__.split(".")[0]
    if module in ("huggingface_hub", "httpx", "httpcore", "requests", "urllib3"):
        return True
    return isinstance(err, (OSError, ConnectionError)) and any(
        hint in str(err) for hint in ("huggingface.co", "offline mode", "gated", "Hub", "connect")
    )


@lru_cache(maxsize=1)
def _hub_problem() -> str | None:
    """Why the hub cannot be reached (asked once per process; None in offline mode, where the cache answers)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return None
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    problem = unreachable(endpoint)
    return None if problem is None else f"{endpoint} does not answer: {problem}"


@contextmanager
def fetching(what: str):
    """Turn a failure to fetch `what` (e.g. "dataset HuggingFaceFW/fineweb-edu") into one clear line; a hub that
    does not answer fails at once instead of after minutes of retries."""
    problem = _hub_problem()
    if problem is not None:
        raise UserError(f"cannot fetch {what} from the Hugging Face hub ({problem}): {FIX}")
    try:
        yield
    except UserError:
        raise
    except Exception as err:
        if not _is_hub_error(err):
            raise
        gated = "gated" in str(err).lower() or type(err).__name__ == "GatedRepoError"
        first_line = (str(err).strip().splitlines() or [""])[0][:160]
        reason = "it is gated and needs a token" if gated else f"{type(err).__name__}: {first_line}"
        raise UserError(f"cannot fetch {what} from the Hugging Face hub ({reason}): {FIX}") from None
