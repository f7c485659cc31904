"""The UI shows the text of errors written for people, and only of those; the rest are logged."""
from __future__ import annotations

import logging

import gradio as gr
import pytest

from gauntlet.errors import UserError
from ui.common import human_errors


def fail_with(error: Exception):
    @human_errors("testing")
    def handler():
        raise error

    return handler


def test_a_user_error_is_shown_as_written():
    with pytest.raises(gr.Error) as shown:
        fail_with(UserError("Choose a quiz deck first."))()
    assert shown.value.message == "Choose a quiz deck first."


@pytest.mark.parametrize("error", [ValueError("operands could not be broadcast together with shapes (3,) (4,)"),
                                   KeyError("features.head_conv"), PermissionError("/etc/shadow")])
def test_library_internals_are_logged_not_shown(error, caplog):
    with caplog.at_level(logging.ERROR, logger="gauntlet.app"), pytest.raises(gr.Error) as shown:
        fail_with(error)()
    assert shown.value.message == "Something went wrong while testing. Please try again or try another image."
    assert str(error.args[0]) in caplog.text
