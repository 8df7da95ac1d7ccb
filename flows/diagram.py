"""A Mermaid diagram of the conversation, drawn from the transitions table itself."""

from __future__ import annotations

from flows.table import TRANSITIONS


def mermaid() -> str:
    """The state diagram as Mermaid text (paste into Markdown; GitHub renders it)."""
    lines = ["stateDiagram-v2", "    [*] --> start"]
    for source, dest, condition, after in TRANSITIONS:
        label = " / ".join(part for part in (condition, after) if part)
        lines.append(f"    {source.value} --> {dest.value}" + (f": {label}" if label else ""))
    lines += ["    submitted --> [*]", "    signposted --> [*]", "    cancelled --> [*]"]
    return "\n".join(lines)
