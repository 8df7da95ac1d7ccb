"""The practitioner desk on Slack: the Bolt app, its listeners, the cards and modals, and the
senders that post what the outbox holds.
"""
