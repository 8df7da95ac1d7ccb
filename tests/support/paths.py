"""Where the checkout is, for tests that start ``python -m bot…`` in another directory."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The checkout's root: ``PYTHONPATH`` for child processes, and where README.md lives."""
