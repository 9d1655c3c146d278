"""Cluster mode: the bus between nodes, membership, ordering, the cluster transport and node."""
