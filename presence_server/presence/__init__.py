"""Presence: who is online, where, with which status."""
