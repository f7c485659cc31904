"""What an analysis returns: a verdict and one self-describing result per explanation method."""
from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from .detector import Prediction
from .explain import Explanation
from .explain.faithfulness import Faithfulness


@dataclass(frozen=True)
class MethodResult:
    """One method's answer for one image: the heatmap, the overlay shown, and its faithfulness when measured."""

    explanation: Explanation
    overlay: Image.Image
    faithfulness: Faithfulness | None = None  # deletion / insertion AUC, only when asked for
    # the overlay saved once as a file while the result is cached: shown to many visitors, it is never re-encoded
    overlay_file: str | None = None

    @property
    def method(self) -> str:
        return self.explanation.method

    @property
    def variant(self) -> str:
        return self.explanation.variant


@dataclass
class Analysis:
    """A verdict with its explanations, ready to display."""

    image: Image.Image
    prediction: Prediction
    results: list[MethodResult] = field(default_factory=list)
    model_label: str = ""
    track_record: str = ""  # how often this model was right on its test set (see gauntlet.present.track_record)
    model_key: str = ""
    content_key: str = ""  # hash of the pixels (gauntlet.images.content_key): finished explanations are cached by it
    preview_file: str | None = None  # the decoded image saved once (WebP): served to many visitors, never re-encoded
