"""A Mermaid diagram of the conversation, drawn from the route table itself."""

from __future__ import annotations

from flows.routing import ROUTE


def mermaid() -> str:
    """The state diagram as Mermaid text (paste into Markdown; GitHub renders it).

    A first message that says several things goes to ``confirm`` (what was understood,
    shown back), and from there along the same route, skipping what it answered.
    """
    lines = [
        "stateDiagram-v2",
        "    [*] --> start",
        "    start --> confirm: first message taken in",
    ]
    lines.append("    confirm --> role_group: that's right (answered steps are skipped)")
    for edge in ROUTE:
        label = " / ".join(part for part in (edge.condition, edge.after) if part)
        lines.append(
            f"    {edge.source.value} --> {edge.dest.value}" + (f": {label}" if label else "")
        )
    lines += ["    submitted --> [*]", "    signposted --> [*]", "    cancelled --> [*]"]
    return "\n".join(lines)
