"""Programs built on the Python SDK (README "Python SDK"); run each with ``python -m examples.<name>``."""
