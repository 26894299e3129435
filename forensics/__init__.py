"""forensics: tell real faces from GAN-made and face-swapped ones.

The runtime library lives here; training code lives in the sibling ``trainers`` package.
The library returns data; only :mod:`forensics.cli` prints.
"""

__version__ = "0.1.0"
