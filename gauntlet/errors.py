"""Errors whose message is written for the person using GAUNTLET.

The UI shows the text of a :class:`UserError` as it is; any other exception is
a fault of the program or its setup: it is logged and the user sees a generic
sentence, never library internals (see ``ui/common.py``).
"""
from __future__ import annotations


class UserError(ValueError):
    """Bad input or a request that cannot be met, explained in words a visitor understands."""
