"""The data key a test gives the ``helpline run`` processes it starts, as production does.

On PostgreSQL the service refuses to run without ``HELPLINE_DATA_KEY``; one key for the
whole test session, so a process restarted by a test reads what the first one sealed.
"""

from __future__ import annotations

from storage.encryption import new_key

DATA_KEY = new_key()
