"""Command entry point ``python -m gauntlet.quiz``: the code lives in :mod:`gauntlet.teaching.quiz`."""
import sys

from .teaching.quiz import main

if __name__ == "__main__":
    sys.exit(main())
