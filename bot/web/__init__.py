"""The web chat channel: a chat page and a widget on the helpline's own site, one
WebSocket per open chat, the same intake as every other channel (``PROTOCOL.md``)."""
