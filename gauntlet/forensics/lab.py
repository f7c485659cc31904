"""The lab's actions on an upload, over the shared model catalogue: what the Detector tab's evidence panels call.

Each takes the upload's path (the original bytes: provenance needs them, and the frequency view must see
the pixels as they were, not a preview re-encoded for the browser) and respects the app's upload limits.
"""
from __future__ import annotations

from ..explain import Explanation
from ..images import ImageSource, load_image
from ..service import ModelCatalog
from .agreement import SanityCheck, sanity_check
from .frequency import FrequencyView, frequency_view
from .laundering import LaunderingReport, launder
from .provenance import Provenance, read_provenance


class ForensicsLab:
    """Provenance, frequency view, laundering and sanity check for uploads, with the app's limits."""

    def __init__(self, catalog: ModelCatalog, max_pixels: int, max_upload_bytes: int,
                 explain_timeout_s: float | None = None) -> None:
        self.catalog = catalog
        self.max_pixels = max_pixels
        self.max_upload_bytes = max_upload_bytes
        self.explain_timeout_s = explain_timeout_s

    def provenance(self, path: str) -> Provenance:
        """What the file says about its origin (never raises for a bad file: problems become notes)."""
        return read_provenance(path, max_bytes=self.max_upload_bytes)

    def frequency(self, source: ImageSource) -> FrequencyView:
        """The spectrum of the fine detail and the NPR residual (ImageError for an undecodable upload).

        The image is not reduced to the working size: resampling would erase the traces the view shows.
        """
        return frequency_view(load_image(source, max_pixels=self.max_pixels, max_side=None))

    def launder(self, source: ImageSource, key: str) -> LaunderingReport:
        """The verdict and Grad-CAM of the image and of its four re-shared copies."""
        image = load_image(source, max_pixels=self.max_pixels)
        detector = self.catalog.detector(key)
        with self.catalog.explaining(key) as explainers:
            grad_cam = explainers.get("grad_cam", "fast")
            return launder(detector, image, lambda version, target: grad_cam.explain(
                version, target=target, time_limit_s=self.explain_timeout_s))

    def sanity(self, source: ImageSource, key: str, explanation: Explanation, layers: str = "last") -> SanityCheck:
        """``explanation``'s method again, on a copy of the model with a random classifier head."""
        image = load_image(source, max_pixels=self.max_pixels)
        return sanity_check(self.catalog.detector(key), explanation, image, layers)
