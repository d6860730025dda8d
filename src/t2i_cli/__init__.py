"""t2i: a small, hackable DALL-E for the command line."""

__version__ = "0.21.0"
