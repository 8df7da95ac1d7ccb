"""The Telegram channel, the model adapter: updates become :class:`~flows.messages.Inbound`,
replies become messages, and nothing here decides what the flow does.
"""
