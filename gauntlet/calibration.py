"""Calibrated three-way verdicts: REAL, FAKE, or "not sure".

A checkpoint's ``config.json`` may carry a ``calibration`` object, fitted on validation data
and held-out sources by the training code::

    {"temperature": T, "not_sure": [low, high], "fitted_on": "...", "command": "..."}

With ``p`` the FAKE probability of ``softmax(logits / T)``, a verdict is confident REAL when
``p <= low``, confident FAKE when ``p >= high`` and "not sure" in between. The band is chosen so
that confident verdicts are right often enough on images unlike the training data; inside it the
model's lean is close to a coin toss there, and the app says so instead of showing a verdict.
Without calibration the temperature is 1 and every verdict is confident (the argmax, as before).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .checkpoint import CheckpointError

NOT_SURE = "NOT SURE"  # the verdict label of a prediction inside the band


class CalibrationError(CheckpointError):
    """A checkpoint's ``calibration`` object cannot be used; the message says why (shown as a checkpoint error)."""


@dataclass(frozen=True)
class Calibration:
    """A temperature for the logits and the band of FAKE probabilities that gets no confident verdict.

    The default (temperature 1, band ``[0.5, 0.5]``) is no calibration: every verdict is confident,
    REAL up to and including 0.5 as the argmax decides ties.
    """

    temperature: float = 1.0
    low: float = 0.5
    high: float = 0.5

    @classmethod
    def from_config(cls, calibration: dict[str, Any] | None) -> "Calibration":
        """Read a config's ``calibration`` object (empty or missing: no calibration), checking its values."""
        if not calibration:
            return cls()
        try:
            temperature = float(calibration.get("temperature", 1.0))
            low, high = (float(v) for v in calibration.get("not_sure", (0.5, 0.5)))
        except (TypeError, ValueError) as err:
            raise CalibrationError(f"calibration {calibration!r} is malformed: {err}") from None
        if not temperature > 0:
            raise CalibrationError(f"calibration temperature must be positive, not {temperature}")
        if not 0.0 <= low <= 0.5 <= high <= 1.0:
            raise CalibrationError(f"calibration not_sure band [{low}, {high}] must satisfy 0 <= low <= 0.5 <= high <= 1")
        return cls(temperature, low, high)

    @property
    def calibrated(self) -> bool:
        """True when this changes anything (a temperature other than 1 or a non-empty band)."""
        return self != Calibration()

    def rescale(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Probabilities at the calibrated temperature: ``softmax(log(p) / T)`` along the last dimension.

        For the network's own softmax this is exactly ``softmax(logits / T)``; for a verdict averaged with the
        mirror image it scales the averaged probability's logit, as ``training.calibrate`` fits ``T``.
        """
        if self.temperature == 1.0:
            return probabilities
        return torch.softmax(torch.log(probabilities.clamp_min(1e-12)) / self.temperature, dim=-1)

    def is_sure(self, fake_probability: float | np.ndarray) -> bool | np.ndarray:
        """True where a (calibrated) FAKE probability lies outside the "not sure" band (works on arrays too)."""
        p = np.asarray(fake_probability)
        sure = (p <= self.low) | (p >= self.high)
        return bool(sure) if sure.ndim == 0 else sure
