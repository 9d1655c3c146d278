"""Calls and the Python SDK.

Server side, with no Socket.IO or Redis in its domain code: the call book
(``calls``), its store contract (``call_store``) and TURN credentials (``turn``).

Client side, the Python SDK that bots, tests and scripts use (README, "Python
SDK"): ``client`` (``OfficeClient``), ``wire`` (typed wire objects), ``events``
(handlers and the mailbox), ``floorview`` (a watched floor) and ``webrtc``
(``CallPeer``, calls with aiortc). Import them by module: importing this package
loads neither side.
"""
