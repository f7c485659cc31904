"""Helpers shared by the tab builders: human error messages, never a traceback in the UI."""
from __future__ import annotations

import functools
import logging
from typing import Callable, TypeVar

import gradio as gr

from gauntlet.checkpoint import CheckpointError
from gauntlet.images import ImageError

log = logging.getLogger("gauntlet.app")
F = TypeVar("F", bound=Callable)
USER_ERRORS = (ImageError, CheckpointError, ValueError, KeyError, PermissionError, TimeoutError)


def human_errors(action: str) -> Callable[[F], F]:
    """Turn exceptions into a ``gr.Error`` with a readable message; unexpected ones are logged, not shown."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except USER_ERRORS as err:
                message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
                raise gr.Error(str(message), print_exception=False) from None
            except Exception:  # noqa: BLE001 - the UI must never show a traceback
                log.exception("Unexpected error while %s", action)
                raise gr.Error(f"Something went wrong while {action}. Please try again or try another image.",
                               print_exception=False) from None

        return wrapper  # type: ignore[return-value]

    return decorate
