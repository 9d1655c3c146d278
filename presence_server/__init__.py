"""The presence server process: config, app wiring, Socket.IO gateway, REST API,
auth, presence, metrics."""

__version__ = "0.1.0"
