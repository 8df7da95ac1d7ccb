"""The ``helpline`` command: one module per command group, brought together in
:mod:`bot.cli.main`.
"""
