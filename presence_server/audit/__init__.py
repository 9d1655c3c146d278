"""The audit trail: its store contract, memory, SQLite and Redis stores, and the log that records and reads it."""
