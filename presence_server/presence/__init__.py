"""Presence: the presence store contract, its memory and Redis stores, the pure state and the service."""
