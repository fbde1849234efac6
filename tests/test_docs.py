"""The documentation cannot drift from the code: docs/config.md against pymc_tracers.config.

Every key that ``pymc-tracers fit`` accepts (read from the sets ``config.py`` checks against)
must be documented in its section of docs/config.md, every documented key must be accepted,
and the documented defaults of ``[sampler]`` and ``[model] tracer_scale`` must be the ones
``load_config`` fills in. The Sphinx build itself runs in ``.ci/run`` (``sphinx -W``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pymc_tracers import config

ROOT = Path(__file__).resolve().parents[1]
CONFIG_PAGE = ROOT / "docs" / "config.md"


def _accepted(name):
    """A key set that config.py validates against (module-level, so the docs can follow it)."""
    value = getattr(config, name, None)
    assert value is not None, (
        f"pymc_tracers.config.{name} is gone: update tests/test_docs.py to read the accepted "
        "keys from where config.py now keeps them"
    )
    return value


def _page() -> str:
    return CONFIG_PAGE.read_text(encoding="utf-8")


def _section(title: str) -> str:
    """The text of the ``### `title``` section of docs/config.md (up to the next heading of
    level <= 3)."""
    text = _page()
    heading = f"### `{title}`"
    assert heading in text, f"docs/config.md has no section {heading!r}"
    body = text.split(heading, 1)[1]
    end = re.search(r"^#{1,3} ", body, flags=re.MULTILINE)
    return body[: end.start()] if end else body


def _table_keys(section: str) -> dict[str, list[str]]:
    """``{key: [cells]}`` of the rows of the section's tables whose first cell is `key`."""
    rows = {}
    for line in section.splitlines():
        match = re.match(r"^\|\s*`([A-Za-z_][A-Za-z0-9_]*)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = [c.strip() for c in match.group(2).split("|")]
    return rows


SECTIONS = sorted(_accepted("SECTIONS"))


def test_every_section_is_documented():
    text = _page()
    for section in _accepted("TOP_LEVEL"):
        title = "[[components]]" if section == "components" else f"[{section}]"
        assert f"### `{title}`" in text, f"docs/config.md has no section for {title}"


@pytest.mark.parametrize("section", SECTIONS)
def test_every_accepted_key_is_documented_and_nothing_else(section):
    accepted = set(_accepted("SECTIONS")[section])
    documented = set(_table_keys(_section(f"[{section}]")))
    missing = sorted(accepted - documented)
    stale = sorted(documented - accepted)
    assert not missing, (
        f"[{section}] keys accepted by config.py but not in docs/config.md: {missing}"
    )
    assert not stale, f"[{section}] keys in docs/config.md that config.py refuses: {stale}"


def test_component_keys_profiles_and_parameters_are_documented():
    section = _section("[[components]]")
    rows = _table_keys(section)
    # the component table itself, and the keys besides parameters (profile, pa, center, ...)
    for key in ("name", "light", "tracer", *_accepted("EXTRA_KEYS")):
        assert key in rows, f"[[components]] key {key!r} is not a row of docs/config.md"
    for kind, profiles in (("light", config.LIGHT_PROFILES), ("tracer", config.TRACER_PROFILES)):
        for profile, parameters in profiles.items():
            row = re.search(rf"^\|\s*`{profile}`\s*\|(.*)$", section, flags=re.MULTILINE)
            assert row, f"{kind} profile {profile} has no row in docs/config.md"
            named = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", row.group(1)))
            missing = sorted(set(parameters) - named)
            assert not missing, f"{profile}: parameters {missing} missing from docs/config.md"
            stale = sorted(named - set(parameters) - set(_accepted("EXTRA_KEYS")))
            assert not stale, f"{profile}: docs/config.md lists unknown parameters {stale}"


def test_choices_are_documented():
    psf = _table_keys(_section("[psf]"))
    for kind in _accepted("PSF_TYPES"):
        assert f'`"{kind}"`' in psf["type"][0], f'[psf] type "{kind}" is not documented'
    auto_paragraph = _page().split('* `"auto"`', 1)
    assert len(auto_paragraph) == 2, 'docs/config.md no longer explains "auto" priors'
    text = auto_paragraph[1].split("\n\n", 1)[0]
    for key in _accepted("AUTO_PARAMETERS"):
        assert f"`{key}`" in text, f'"auto" prior for {key} is not documented'


def _default_cell(section: str, key: str) -> str:
    cells = _table_keys(_section(f"[{section}]"))[key]
    return cells[1].strip("`").strip('"')


def test_documented_defaults_are_the_ones_load_config_fills_in(tmp_path):
    from astropy.io import fits

    values = np.full((5, 5), 8.5)
    hdus = fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(values, name="OH"), fits.ImageHDU(values * 0 + 0.1)]
    )
    hdus[2].name = "OH_ERR"
    hdus.writeto(tmp_path / "g.fits")
    (tmp_path / "c.toml").write_text(
        '[data]\nfile = "g.fits"\ntracer = "OH"\ntracer_error = "OH_ERR"\npixel_scale = 0.1\n'
        '[psf]\ntype = "gaussian"\nfwhm = 0.3\n'
        '[[components]]\n[components.light]\nprofile = "Exponential"\n'
        "[components.tracer]\nprofile = \"Constant\"\nvalue = {distribution = 'Normal', mu = 8, "
        "sigma = 1}\n"
    )
    loaded = config.load_config(tmp_path / "c.toml")
    for key, value in loaded.sampler.items():
        assert _default_cell("sampler", key) == str(value), (
            f"[sampler] {key}: docs/config.md says {_default_cell('sampler', key)!r}, "
            f"load_config fills in {value!r}"
        )
    # tracer_scale has no fixed default: "log" for a tracer in dex, else it must be given
    assert "tracer_scale" not in loaded.model
    assert '"log"' in _default_cell("model", "tracer_scale") and "dex" in _default_cell(
        "model", "tracer_scale"
    )


def test_example_config_uses_only_documented_keys():
    """The init-example template: every key it sets is a documented row of its section."""
    template = config.EXAMPLE_CONFIG
    section = None
    for line in template.splitlines():
        line = line.split("#", 1)[0].strip()
        header = re.match(r"^\[+([a-z_.]+)\]+$", line)
        if header:
            section = header.group(1)
            continue
        key = re.match(r"^([a-z_0-9]+)\s*=", line)
        if not key or section is None:
            continue
        if section.startswith("components"):
            page = _section("[[components]]")
            assert f"`{key.group(1)}`" in page, f"example key {key.group(1)} undocumented"
        else:
            assert key.group(1) in _table_keys(_section(f"[{section}]")), (
                f"example key [{section}] {key.group(1)} is not documented"
            )


@pytest.mark.parametrize("command", ["fit", "init-example"])
def test_command_line_options_are_documented(command):
    """Every option of ``pymc-tracers fit`` / ``init-example`` is a row of docs/config.md."""
    from pymc_tracers.cli import build_parser

    parser = build_parser().subcommands[command]
    preamble = _page().split("## Outputs", 1)[0]
    documented = set(re.findall(r"^\|\s*`(--[a-z-]+)", preamble, flags=re.MULTILINE))
    options = {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    missing = sorted(options - documented)
    assert not missing, f"pymc-tracers {command} options missing from docs/config.md: {missing}"


def test_every_api_name_the_pages_mention_exists():
    """``pmt.X`` / ``pymc_tracers.mod.X`` in docs/*.md resolve (no renamed or removed names)."""
    import importlib

    import pymc_tracers

    missing = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"\b(?:pmt|pymc_tracers)((?:\.[A-Za-z_]\w*)+)", text):
            parts = match.group(1).strip(".").split(".")
            obj = pymc_tracers
            for i, part in enumerate(parts):
                if hasattr(obj, part):
                    obj = getattr(obj, part)
                    continue
                try:
                    obj = importlib.import_module("pymc_tracers." + ".".join(parts[: i + 1]))
                except ImportError:
                    missing.append(f"{page.name}: {match.group(0)}")
                    break
    assert not missing, f"docs name things the package does not have: {missing}"
