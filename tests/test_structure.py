"""Every module of `bot` and `handlers` imports alone, and capabilities plug in at one place.

An import circle only shows when the circle's member is imported first, in a fresh
interpreter: `import bot.oncall.schedule` failed while `import bot` worked. So each module is
imported by itself in a new process.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import bot.config
import bot.runtime
import handlers
from bot.oncall import rules

ROOT = Path(__file__).resolve().parent.parent

# Imports each module named on stdin in its own forked child of an interpreter that has loaded
# only third-party libraries (forking is ~50x faster than a new interpreter per module), and
# prints the modules that failed with their error.
IMPORT_EACH = r"""
import importlib, os, sys, traceback
try:  # third-party libraries only, so that children start without any bot module
    import pydantic_settings, sqlalchemy.orm, sqlmodel, slack_bolt, slack_sdk.models  # noqa
    import starlette.testclient, httpx, icalendar, jinja2, frontmatter, yaml  # noqa
    import prometheus_client, anyio, dateutil  # noqa
except ImportError:
    pass
assert not [m for m in sys.modules if m.split(".")[0] in ("bot", "handlers")]
for name in sys.stdin.read().split():
    if not hasattr(os, "fork"):
        code = subprocess.call([sys.executable, "-c", f"import {name}"])
    else:
        pid = os.fork()
        if pid == 0:
            try:
                importlib.import_module(name)
            except BaseException:
                traceback.print_exc(limit=-3)
                os._exit(1)
            os._exit(0)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code:
        print("FAILED", name, flush=True)
"""


def modules() -> list[str]:
    names = []
    for package in ("bot", "handlers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.append(".".join(parts))
    return names


def test_the_module_list_covers_the_packages():
    names = modules()
    assert {"bot", "handlers", "bot.oncall.schedule", "bot.runtime", "handlers.oncall"} <= set(
        names
    )


def test_every_module_imports_alone_in_a_fresh_interpreter():
    result = subprocess.run(
        [sys.executable, "-c", "import subprocess\n" + IMPORT_EACH],
        input="\n".join(modules()),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed == [], result.stderr


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_core_imports_no_capability():
    # config and runtime sit below every capability; the registration point sits above.
    for module in (bot.config, bot.runtime):
        imported = imported_modules(Path(module.__file__))
        assert not [m for m in imported if m.split(".")[0] == "handlers"], module.__name__
        for capability in ("oncall", "paging", "support", "wins", "platform_migrations"):
            assert not [m for m in imported if m.startswith(f"bot.{capability}")], capability


def test_one_list_names_every_capability_once():
    names = [c.name for c in handlers.CAPABILITIES]
    assert len(names) == len(set(names))
    assert {"oncall", "paging", "support"} <= set(names)
    # Every package under bot/ with an installer or checks is listed.
    assert rules.check_rotations in handlers.org_checks()


def test_a_capability_module_that_fails_to_import_is_reported(tmp_path):
    broken = tmp_path / "circle_a.py"
    broken.write_text("from circle_b import B\nA = 1\n")
    (tmp_path / "circle_b.py").write_text("from circle_a import A\nB = 1\n")
    result = subprocess.run(
        [sys.executable, "-c", "import subprocess\n" + IMPORT_EACH],
        input="circle_a\njson",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}"},
        timeout=120,
    )
    assert result.stdout.split() == ["FAILED", "circle_a"]
