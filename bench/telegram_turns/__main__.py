"""``python -m bench.telegram_turns``."""

from bench.telegram_turns.cli import main

main()
