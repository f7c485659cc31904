"""The teaching side of GAUNTLET: quiz decks, quiz sessions, classroom rooms and what they show.

It builds on the detection side (``gauntlet.detector``, ``gauntlet.service``, ``gauntlet.explain``),
which never imports it back.
"""
