"""Every setting is documented where operators look: the README's table and the example."""

from __future__ import annotations

from pydantic import AliasChoices

from bot.settings import Settings
from tests.support.paths import ROOT


def names() -> list[str]:
    found = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices)
        found += [str(choice) for choice in alias.choices]
    return found


def test_every_setting_is_in_the_readme_and_the_env_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = (ROOT / "deploy" / "helpline.env.example").read_text(encoding="utf-8")
    assert names(), "no settings found: the test would prove nothing"
    for name in names():
        assert f"`{name}`" in readme, f"{name} is not in the README's configuration table"
        assert f"{name}=" in example, f"{name} is not in deploy/helpline.env.example"
