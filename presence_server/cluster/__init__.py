"""Cluster mode: the bus between nodes and the state they share in Redis."""
