"""The application side: the channels, the services between them and the core, and the one
composition root (:mod:`bot.app`) that builds and runs them.
"""
