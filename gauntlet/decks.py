"""Command entry point ``python -m gauntlet.decks``: the code lives in :mod:`gauntlet.teaching.decks`."""
import sys

from .teaching.decks import main

if __name__ == "__main__":
    sys.exit(main())
