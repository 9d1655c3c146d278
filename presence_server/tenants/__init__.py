"""Municipalities added at runtime: their identity provider settings and origins.

The tenant store family (docs/onboarding.md, docs/architecture.md): the contract
(:mod:`.store`), a memory store, a SQLite store and a Redis store, the registry
service that feeds them to token verification and origin checks on every node
(:mod:`.service`), and the platform administration that writes them
(:mod:`.platform`).
"""
