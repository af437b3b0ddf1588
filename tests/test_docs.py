"""The manual (docs/, built by MkDocs): it builds with every link, picture and heading it points to found,
so `make test` and CI fail on a broken link; and where it describes the code (the named final states,
the delete-user policy's levels, the deployments, the one-machine setup) it says what the code does."""
from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
DOCS = PROJECT / "docs"


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    """`make docs`, into SITE: the strict build of the manual."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # the theme's notice about its own future, not ours
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], cwd=config.parent, env=env, capture_output=True,
                          text=True, timeout=300)


def table_after(page: Path, heading: str) -> list[list[str]]:
    """The cells of the first table after HEADING on PAGE (header row first)."""
    text = page.read_text()
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            if not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line):
                rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    assert rows, f"no table after {heading!r} in {page}"
    return rows


def test_the_manual_builds_with_every_link_picture_and_heading_found(tmp_path):
    built = build(PROJECT / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    site = tmp_path / "site"
    assert (site / "index.html").exists() and (site / "operations" / "ui.html").exists()
    pictures = re.findall(r"\]\(\.\./images/([\w-]+\.png)\)", (DOCS / "operations" / "ui.md").read_text())
    assert pictures, "the operator's chapter shows the UI"
    for picture in pictures:
        assert (site / "images" / picture).stat().st_size > 10_000, picture  # a real screenshot, copied


@pytest.mark.parametrize("link", ["jobs/purge.md#no-such-heading", "jobs/no-such-job.md",
                                  "images/no-such-picture.png", "#no-such-heading-here"])
def test_a_broken_link_fails_the_build_naming_it(tmp_path, link):
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(PROJECT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    index = tmp_path / "docs" / "index.md"
    pointer = f"![A picture]({link})" if link.endswith(".png") else f"See [this]({link})."
    index.write_text(f"{index.read_text()}\n{pointer}\n")
    built = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0
    assert link.rsplit("#", 1)[-1].rsplit("/", 1)[-1] in built.stdout + built.stderr


def test_a_page_left_out_of_the_navigation_fails_the_build(tmp_path):
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(PROJECT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "docs" / "jobs" / "forgotten.md").write_text("# A job nobody can find\n")
    built = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0 and "forgotten.md" in built.stdout + built.stderr


def test_the_readme_is_the_front_door_its_commands_and_links_work():
    readme = (PROJECT / "README.md").read_text()
    two_commands = readme[readme.index("## Two commands"):readme.index("## Where to read on")]
    commands = re.findall(r"^make (\w[\w-]*)", two_commands, re.MULTILINE)
    assert commands == ["demo", "test"]
    targets = set(re.findall(r"^([\w-]+):", (PROJECT / "Makefile").read_text(), re.MULTILINE))
    assert set(commands) | {"docs"} <= targets
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert sum(link.startswith("docs/") for link in links) >= 10, links
    nav = yaml.safe_load((PROJECT / "mkdocs.yml").read_text())["nav"]
    in_nav = set(re.findall(r"'([\w/-]+\.md)'", repr(nav)))
    for link in links:
        assert (PROJECT / link).exists(), link
        if link.startswith("docs/") and link.endswith(".md"):
            assert link.removeprefix("docs/") in in_nav, link


def test_the_command_table_lists_every_command():
    import click

    from flows.cli import cli

    rows = table_after(DOCS / "command-line.md", "## Command line")
    documented = {name for row in rows[1:] for name in re.findall(r"`([a-z][\w-]*)", row[0])}
    assert set(cli.list_commands(click.Context(cli))) <= documented, documented


def test_the_named_states_are_the_ones_runs_end_in():
    from tasks.engine.outcome import Kind

    rows = table_after(DOCS / "operations" / "ui.md", "## 6. Read the report")
    assert rows[0][:2] == ["state", "type"]
    documented = {(name.strip("*"), kind) for name, kind, _ in rows[1:]}
    assert documented == {(k.state_name, k.state_type) for k in Kind}


def test_the_policy_table_has_one_column_per_level_in_order_and_marks_the_default():
    from tasks.library.policy import DEFAULT_POLICY, POLICY_LEVELS

    header = table_after(DOCS / "delete-user-policy.md", "## What each level keeps and removes")[0]
    levels = header[1:1 + len(POLICY_LEVELS)]
    assert [level.removesuffix(" (default)") for level in levels] == list(POLICY_LEVELS)
    assert [level for level in levels if level.endswith("(default)")] == [f"{DEFAULT_POLICY} (default)"]


def test_the_deployments_table_lists_the_deployments_of_prefect_yaml_with_their_schedules():
    deployments = yaml.safe_load((PROJECT / "prefect.yaml").read_text())["deployments"]
    rows = {row[0].strip("`"): row for row in table_after(DOCS / "operations" / "index.md", "defines these")[1:]}
    expected = {}
    for deployment in deployments:
        path, _, attribute = deployment["entrypoint"].partition(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), attribute)
        expected[f"{flow.name}/{deployment['name']}"] = deployment
    assert set(rows) == set(expected)
    for name, deployment in expected.items():
        when = rows[name][2]
        for schedule in deployment.get("schedules") or []:
            minute, hour = schedule["cron"].split()[:2]
            assert f"{int(hour):02}:{int(minute):02}" in when and schedule["timezone"] in when, (name, when)
        if not deployment.get("schedules"):
            assert when == "by hand", (name, when)


def test_the_one_machine_script_runs_the_commands_the_setup_page_gives():
    """deployments/one-machine.sh (which the browser test starts) is steps 1-3 as written."""
    page = (DOCS / "operations" / "server.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", page, re.DOTALL)
    documented = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()
                  if line.startswith((".venv/bin/prefect ", ".venv/bin/python deployments/"))]
    assert len(documented) >= 4, documented  # server, work pool, deploy, worker
    script = [line.strip() for line in (PROJECT / "deployments" / "one-machine.sh").read_text().splitlines()]
    for command in documented:
        as_in_script = re.sub(r"^\.venv/bin/(\S+)", r'"$BIN/\1"', command)
        assert any(line == as_in_script or line.startswith(as_in_script + " ") for line in script), command
