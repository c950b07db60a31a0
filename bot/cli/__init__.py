"""The command line: one module per command group; parse, call the core once, print.

The top layer: nothing imports it.
"""

from bot.cli.main import main

__all__ = ["main"]
