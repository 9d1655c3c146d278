"""Calls on the server: the call store contract, its memory and Redis stores, and the service."""
