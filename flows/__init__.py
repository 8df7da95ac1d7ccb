"""The helpline's conversation as pure logic and data: no I/O, no framework but ``transitions``;
the channels and storage build on it, never the other way round.
"""
