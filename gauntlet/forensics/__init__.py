"""The forensics lab: evidence beside the detector's verdict, each piece with what it does and does not prove.

* :mod:`.provenance`: what the file says about itself (C2PA Content Credentials, EXIF, PNG text, XMP);
* :mod:`.laundering`: the verdict again after re-sharing-like transforms (:mod:`gauntlet.transforms`);
* :mod:`.frequency`: the spectrum of the fine detail and the NPR residual;
* :mod:`.agreement`: whether the heatmaps agree with each other, and with a randomised model's.

No gradio here (the UI lives in ``ui/``).
"""
