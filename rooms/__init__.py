"""The campus domain: cooperations, municipalities, floors, rooms, doors, knocks.

Knows nothing of Socket.IO, aiohttp or Redis: storage backends plug in behind
:class:`rooms.store.CampusStore`, transports behind small listener interfaces.
"""
