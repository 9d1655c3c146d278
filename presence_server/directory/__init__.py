"""The people directory: its store contract, memory and Redis stores, and the service that feeds it."""
