"""`helpline report`, `import` and `export` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import helpline
from tests.support.report_data import DATASET, HEADER

pytestmark = pytest.mark.e2e  # the service, a process or a real server: see README "Tests"


def imported(tmp_path: Path) -> Path:
    source = tmp_path / "cases.csv"
    source.write_text(DATASET + "\n", encoding="utf-8")
    result = helpline("import", str(source), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Imported 7 cases" in result.stdout
    return source


def test_cli_report_json_has_every_key(tmp_path: Path) -> None:
    imported(tmp_path)
    out = helpline(
        "report", "--from", "2022-09-01", "--to", "2023-08-31", "--format", "json", cwd=tmp_path
    )
    data = json.loads(out.stdout)
    assert set(data) == {
        "period",
        "total_cases",
        "by_channel",
        "enquirer_type",
        "setting",
        "platform_type",
        "social_platform",
        "subject_words",
        "categories",
        "top_categories",
        "by_month",
        "referred_to_platform_percent",
        "setting_categories",
        "by_region",
    }
    assert data["total_cases"] == 5


def test_cli_report_markdown_with_charts(tmp_path: Path) -> None:
    imported(tmp_path)
    out_dir = tmp_path / "out"
    result = helpline(
        "report", "--from", "2022-09-01", "--to", "2023-08-31", "--out", str(out_dir), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "## Table 6: nature of enquiries" in result.stdout
    assert "| Online Reputation | 2 | 40.00 |" in result.stdout
    for name in ("report.md", "cases_per_month.png", "categories.png", "primary_vs_secondary.png"):
        assert (out_dir / name).stat().st_size > 0
    assert (out_dir / "cases_per_month.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_report_csv_writes_one_file_per_table(tmp_path: Path) -> None:
    imported(tmp_path)
    out_dir = tmp_path / "csv"
    helpline(
        "report",
        "--from",
        "2022-09-01",
        "--to",
        "2023-08-31",
        "--format",
        "csv",
        "--out",
        str(out_dir),
        cwd=tmp_path,
    )
    assert (out_dir / "categories.csv").read_text().splitlines()[0] == "category,count,percent"
    assert (out_dir / "by_month.csv").read_text().count("\n") == 13


def test_cli_report_compare_to_adds_previous_and_change(tmp_path: Path) -> None:
    imported(tmp_path)
    out = helpline(
        "report",
        "--from",
        "2023-09-01",
        "--to",
        "2024-08-31",
        "--compare-to",
        "2022-09-01..2023-08-31",
        cwd=tmp_path,
    ).stdout
    assert "| Label | Cases | Previous | Change |" in out
    assert "| Teacher | 1 | 2 | -1 |" in out


def test_cli_report_bad_period_is_explained(tmp_path: Path) -> None:
    result = helpline("report", "--from", "2023-09-01", "--to", "2022-08-31", cwd=tmp_path)
    assert result.returncode == 2 and "ends" in result.stderr
    result = helpline("report", "--from", "1 Sept", "--to", "2022-08-31", cwd=tmp_path)
    assert result.returncode == 2 and "not a date" in result.stderr


def test_cli_import_bad_file_lists_problems_and_imports_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"{HEADER}\nB1,2023-01-01T10:00:00,email,Wizard,,,,,,s,,,,new\nB2,soon,email,Teacher,,,,,,s,,,,new\n"
    )
    result = helpline("import", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert "line 2: unknown enquirer_type 'Wizard'" in result.stderr
    assert "line 3: received_at 'soon'" in result.stderr
    listed = json.loads(helpline("cases", "list", "--json", cwd=tmp_path).stdout)
    assert listed == []
    missing = helpline("import", str(tmp_path / "nope.csv"), cwd=tmp_path)
    assert missing.returncode == 2 and "Cannot read" in missing.stderr


def test_cli_export_then_import_elsewhere_gives_the_same_report(tmp_path: Path) -> None:
    imported(tmp_path)
    exported = tmp_path / "year.csv"
    result = helpline(
        "export", "--from", "2022-09-01", "--to", "2023-08-31", str(exported), cwd=tmp_path
    )
    assert "Exported 5 cases" in result.stdout
    other = tmp_path / "other"
    other.mkdir()
    assert helpline("import", str(exported), cwd=other).returncode == 0
    args = ("report", "--from", "2022-09-01", "--to", "2023-08-31", "--format", "json")
    assert json.loads(helpline(*args, cwd=other).stdout) == json.loads(
        helpline(*args, cwd=tmp_path).stdout
    )
