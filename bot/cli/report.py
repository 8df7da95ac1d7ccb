"""The annual analysis as Markdown, JSON, CSV and charts (the report's tables, in its order)."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flows.copy import Copy

COUNT_TABLES = ("by_channel", "enquirer_type", "setting", "platform_type", "social_platform")
ORDER = (
    "by_channel",
    "enquirer_type",
    "setting",
    "by_month",
    "platform_type",
    "social_platform",
    "subject_words",
    "categories",
    "setting_categories",
    "by_region",
)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _pct(value: float) -> str:
    return f"{value:.2f}"


def _change(now: int, before: int | None) -> str:
    return "" if before is None else f"{now - before:+d}"


def rows_for(
    name: str, data: Mapping[str, Any], previous: Mapping[str, Any] | None
) -> tuple[list[str], list[list[Any]]]:
    """Header keys and rows for one table (with previous figures when comparing)."""
    prev = previous.get(name) if previous else None
    if name in (*COUNT_TABLES, "by_region"):
        header = ["label", "count"] + (["previous", "change"] if previous else [])
        rows: list[list[Any]] = []
        for label, n in data[name].items():
            row: list[Any] = [label, n]
            if previous:
                before = prev.get(label, 0) if prev else 0
                row += [before, _change(n, before)]
            rows.append(row)
        if previous and prev:
            rows += [
                [label, 0, before, _change(0, before)]
                for label, before in prev.items()
                if label not in data[name]
            ]
        return header, rows
    if name == "by_month":
        return ["month", "count"], [[month, n] for month, n in data[name].items()]
    if name == "subject_words":
        return ["word", "occurrences"], [list(pair) for pair in data[name]]
    if name == "categories":
        header = ["category", "count", "percent"] + (["previous", "change"] if previous else [])
        rows = []
        ordered = sorted(data[name].items(), key=lambda kv: (-kv[1]["count"], kv[0].casefold()))
        for label, figures in ordered:
            row = [label, figures["count"], _pct(figures["percent"])]
            if previous and prev:
                before = prev.get(label, {}).get("count", 0)
                row += [before, _change(figures["count"], before)]
            rows.append(row)
        return header, rows
    # setting_categories: one row per category, one column per setting
    settings = list(data[name])
    cats = sorted({c for per in data[name].values() for c in per})
    return ["category", *settings], [
        [c, *(_pct(data[name][s].get(c, 0.0)) for s in settings)] for c in cats
    ]


def markdown(data: Mapping[str, Any], copy: Copy, previous: Mapping[str, Any] | None = None) -> str:
    """The analysis as a Markdown document, with last period's figures beside it when given."""
    period = data["period"]
    out = [f"# {copy('report.title', first=period['from'], last=period['to'])}", ""]
    out.append(copy("report.total", total=data["total_cases"]))
    if previous:
        prev = previous["period"]
        out.append("")
        out.append(
            copy(
                "report.compare_note",
                first=prev["from"],
                last=prev["to"],
                total=previous["total_cases"],
            )
        )
    headings = {
        "label": copy("report.label"),
        "count": copy("report.count"),
        "percent": copy("report.percent"),
        "previous": copy("report.previous"),
        "change": copy("report.change"),
        "word": copy("report.word"),
        "occurrences": copy("report.occurrences"),
        "month": copy("report.month"),
        "category": copy("report.category"),
    }
    for name in ORDER:
        header, rows = rows_for(name, data, previous)
        out += ["", f"## {copy(f'report.{name}')}", ""]
        out += _table([headings.get(h, h) for h in header], rows) if rows else ["(none)"]
        if name == "subject_words":
            out += ["", copy("report.referred", percent=_pct(data["referred_to_platform_percent"]))]
        if name == "categories":
            out += ["", copy("report.top_five", labels=", ".join(data["top_categories"]) or "-")]
    return "\n".join(out) + "\n"


def write_csv(
    data: Mapping[str, Any], directory: Path, previous: Mapping[str, Any] | None = None
) -> list[Path]:
    """One CSV per table, named after its JSON key."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ORDER:
        header, rows = rows_for(name, data, previous)
        path = directory / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        written.append(path)
    summary = directory / "summary.csv"
    with summary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["measure", "value"])
        writer.writerow(["from", data["period"]["from"]])
        writer.writerow(["to", data["period"]["to"]])
        writer.writerow(["total_cases", data["total_cases"]])
        writer.writerow(["referred_to_platform_percent", data["referred_to_platform_percent"]])
        writer.writerow(["top_categories", ";".join(data["top_categories"])])
    return [*written, summary]


def write_charts(data: Mapping[str, Any], directory: Path, copy: Copy) -> list[Path]:
    """Figure 2 (cases per month), the category bar chart and Figure 4, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(9, 4))
    months = data["by_month"]
    ax.bar(list(months), list(months.values()), color="#1d3557")
    ax.set_title(copy("report.chart_months"))
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    paths.append(directory / "cases_per_month.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    cats = sorted(data["categories"].items(), key=lambda kv: kv[1]["percent"])
    fig, ax = plt.subplots(figsize=(9, 7))
    ax.barh([c for c, _ in cats], [v["percent"] for _, v in cats], color="#457b9d")
    ax.set_title(copy("report.chart_categories"))
    fig.tight_layout()
    paths.append(directory / "categories.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    shares = data["setting_categories"]
    primary, secondary = shares.get("Primary", {}), shares.get("Secondary", {})
    labels = sorted(set(primary) | set(secondary))
    fig, ax = plt.subplots(figsize=(9, 6))
    positions = range(len(labels))
    ax.barh(
        [p - 0.2 for p in positions],
        [primary.get(c, 0) for c in labels],
        height=0.4,
        label="Primary",
        color="#e63946",
    )
    ax.barh(
        [p + 0.2 for p in positions],
        [secondary.get(c, 0) for c in labels],
        height=0.4,
        label="Secondary",
        color="#1d3557",
    )
    ax.set_yticks(list(positions), labels)
    ax.legend()
    ax.set_title(copy("report.chart_settings"))
    fig.tight_layout()
    paths.append(directory / "primary_vs_secondary.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def as_json(data: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> str:
    """The analysis as JSON for other tools, with last period's figures under ``previous``."""
    out = dict(data)
    if previous:
        out["previous"] = previous
    return json.dumps(out, ensure_ascii=False, indent=2)
