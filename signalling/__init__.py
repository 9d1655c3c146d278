"""WebRTC call brokering (room calls, direct calls, signalling relay, ICE/TURN).

Grows with its own issue; domain code here knows nothing of Socket.IO or Redis.
"""
