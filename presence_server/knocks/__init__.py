"""Doorknocks: the knock store contract, its memory and Redis stores, and the service."""
