"""Helpers shared by the tab builders: human error messages, never a traceback in the UI."""
from __future__ import annotations

import functools
import inspect
import logging
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import gradio as gr

from gauntlet.errors import UserError

log = logging.getLogger("gauntlet.app")
F = TypeVar("F", bound=Callable)


def human_errors(action: str) -> Callable[[F], F]:
    """Show a :class:`UserError`'s message as a ``gr.Error``; log any other exception and show a generic sentence.

    Works for plain handlers and for generator handlers (streamed outputs) alike.
    """

    def decorate(fn: F) -> F:
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def streaming(*args, **kwargs):
                with _shown_as_human_error(action):
                    yield from fn(*args, **kwargs)

            return streaming  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _shown_as_human_error(action):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


@contextmanager
def _shown_as_human_error(action: str) -> Iterator[None]:
    try:
        yield
    except gr.Error:
        raise
    except UserError as err:  # written for people (gauntlet.errors): shown as it is
        raise gr.Error(str(err), print_exception=False) from None
    except Exception:  # noqa: BLE001 - the UI must never show a traceback
        log.exception("Unexpected error while %s", action)
        raise gr.Error(f"Something went wrong while {action}. Please try again or try another image.",
                       print_exception=False) from None
