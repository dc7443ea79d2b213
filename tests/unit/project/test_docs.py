"""The README and the operator files stay true to the code: settings, commands and scripts."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import typer

from worker.cli import app
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()


def test_readme_documents_every_setting() -> None:
    """Each field of Settings has a row in the README's settings table (and no row names a setting that is gone)."""
    rows = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", README, re.MULTILINE))
    fields = set(Settings.model_fields)
    assert fields - rows == set(), "undocumented settings"
    assert rows - fields == set(), "README documents settings that do not exist"


def test_the_two_setup_commands_come_first_and_exist() -> None:
    """The first code block after the intro is the run command and the test command, and both scripts exist."""
    first_block = re.search(r"```sh\n(.*?)```", README, re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["scripts/run.sh", "scripts/test.sh"]
    for script in commands:
        assert os.access(ROOT / script, os.X_OK), script


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run starts from the repository root and execs the README's test command."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash\nset -euo pipefail\n")
    assert 'cd "$(dirname "$0")/.."' in ci
    assert ci.rstrip().endswith("exec scripts/test.sh")


def test_readme_commands_exist() -> None:
    """Every `msgworker <command>` the README mentions is a registered command or group."""
    click_app = typer.main.get_command(app)
    registered = set(click_app.commands)  # type: ignore[attr-defined]
    mentioned = set(re.findall(r"msgworker ([a-z][a-z-]+)", README))
    assert mentioned - registered == set()


def test_env_example_names_are_settings() -> None:
    """.env.example only names real settings."""
    names = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert names <= set(Settings.model_fields)


# The repository stands alone: code and docs cite only files inside it.
SCANNED = ("worker", "compliance", "tasks", "docs", "README.md", "bench", "scripts", "tools", "tests")
# A parent-directory path, the four documents kept outside the repository, a checkout path or a
# notes folder. The last two are bracketed so the pattern does not match its own source line.
OUTSIDE_REFERENCE = re.compile(
    r"\.\./shared|(?<![A-Za-z_])(?:STYLE|COMPLIANCE|DESIGN|EXISTING_DATABASE)\.md|/wor[k]/|/note[s]/"
)
COMPLIANCE_DOC = ROOT / "docs" / "compliance.md"
ANCHOR_CITATION = re.compile(r"(?<![\w/.-])(?:docs/)?compliance\.md#([\w-]+)")


def _scanned_files() -> list[Path]:
    """The tracked files under SCANNED (every file there when this is not a git checkout)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", *SCANNED], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
        paths = [ROOT / p for p in listed.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        paths = [
            p
            for name in SCANNED
            for p in ([ROOT / name] if (ROOT / name).is_file() else (ROOT / name).rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
        ]
    return sorted(p for p in paths if p.is_file())


def _text_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if b"\0" in data:
        return []
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return []


def github_slug(heading: str, seen: dict[str, int]) -> str:
    """The anchor GitHub gives a heading: link text kept, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f"{slug}-{count}"


def _doc_anchors() -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    in_fence = False
    for line in COMPLIANCE_DOC.read_text().splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        match = None if in_fence else re.match(r"#{1,6} (.+)", line)
        if match:
            anchors.add(github_slug(match.group(1), seen))
    return anchors


def test_no_reference_to_files_outside_the_repository() -> None:
    """No tracked file in code, docs, tests or tools cites a shared folder, outside document or notes path."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _scanned_files()
        for number, line in enumerate(_text_lines(path), start=1)
        if OUTSIDE_REFERENCE.search(line)
    ]
    assert found == [], "references outside the repository:\n" + "\n".join(found)


def test_compliance_doc_anchors_cited_exist() -> None:
    """Every section of docs/compliance.md that code, docs or tests cite by anchor is one of its headings."""
    anchors = _doc_anchors()
    cited = {
        (f"{path.relative_to(ROOT)}:{number}", anchor)
        for path in _scanned_files()
        for number, line in enumerate(_text_lines(path), start=1)
        for anchor in ANCHOR_CITATION.findall(line)
    }
    internal = {
        (f"docs/compliance.md:{number}", anchor)
        for number, line in enumerate(COMPLIANCE_DOC.read_text().splitlines(), start=1)
        for anchor in re.findall(r"\]\(#([\w-]+)\)", line)
    }
    assert cited, "nothing cites docs/compliance.md#<anchor>: the citation pattern no longer matches"
    missing = sorted(f"{where}: #{anchor}" for where, anchor in cited | internal if anchor not in anchors)
    assert missing == [], "anchors not in docs/compliance.md:\n" + "\n".join(missing)
