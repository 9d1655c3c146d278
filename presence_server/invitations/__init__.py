"""Invitation links: the invitation store contract, its memory, SQLite and Redis
stores, and the service that creates, redeems and revokes them (docs/projects.md)."""
