"""paperbell: watch new research papers and tell each person about the ones they care about."""

__version__ = "0.1.0"
