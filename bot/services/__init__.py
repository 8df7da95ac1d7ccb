"""What sits between the channels and storage: intake, the desk, delivery to enquirers, the
outbox worker, timers and housekeeping, each the same for every channel.
"""
