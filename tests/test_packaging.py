"""opsbot installs like a real package: a wheel carries what it needs at run time, and
pyproject.toml declares exactly what the code imports."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
import venv
from collections.abc import Mapping
from functools import lru_cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# Declared but never imported by name: zoneinfo reads the data; starlette's TestClient (the
# demo's in-process Slack requests, bot/demo/world.py) imports httpx.
IMPORTED_INDIRECTLY = {"tzdata", "httpx"}
# Imported by name but installed, at the one version that works, by the package that owns it.
PROVIDED_BY = {"pydantic-core": "pydantic"}


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _declared(requirements: list[str]) -> set[str]:
    return {_normal(Requirement(r).name) for r in requirements}


@lru_cache(maxsize=1)
def _module_owners() -> dict[str, list[str]]:
    return packages_distributions()


def _imported_distributions(*folders: str) -> dict[str, set[str]]:
    """Third-party distributions imported by the code in these folders, with a file each."""
    ours = {"bot", "handlers", "tests"}
    by_module = _module_owners()
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in ours or top in sys.stdlib_module_names:
                        continue
                    for dist in by_module.get(top, [top]):
                        dist = PROVIDED_BY.get(_normal(dist), dist)
                        found.setdefault(_normal(dist), set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_package_the_code_imports_is_a_declared_runtime_dependency():
    runtime = _declared(PYPROJECT["project"]["dependencies"])
    imported = _imported_distributions("bot", "handlers", "migrations")
    missing = {dist: sorted(files) for dist, files in imported.items() if dist not in runtime}
    assert not missing, f"imported but not in [project] dependencies: {missing}"


def test_every_runtime_dependency_is_used_and_test_tools_stay_in_dev():
    runtime = _declared(PYPROJECT["project"]["dependencies"])
    imported = set(_imported_distributions("bot", "handlers", "migrations"))
    unused = runtime - imported - IMPORTED_INDIRECTLY
    assert not unused, f"declared but never imported (drop them, or move them to dev): {unused}"
    dev = _declared(PYPROJECT["project"]["optional-dependencies"]["dev"])
    test_only = set(_imported_distributions("tests")) - runtime
    assert test_only <= dev, f"tests import packages missing from the dev extra: {test_only - dev}"


def test_ruff_is_bounded_so_ci_does_not_change_under_us():
    (ruff,) = [r for r in PYPROJECT["project"]["optional-dependencies"]["dev"] if "ruff" in r]
    assert "<" in ruff, ruff


def _lock_pins() -> dict[str, str]:
    """requirements.lock's pins: normalised name -> version."""
    pinned = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip().rstrip("\\").strip()
        if "==" in line:
            name, version = line.split("==")
            pinned[_normal(Requirement(name).name)] = version.split(";")[0].strip()
    return pinned


def test_the_lock_file_pins_every_runtime_dependency():
    pinned = _lock_pins()
    for requirement in map(Requirement, PYPROJECT["project"]["dependencies"]):
        name = _normal(requirement.name)
        assert name in pinned, f"{name} is not in requirements.lock (refresh it, see README)"
        assert requirement.specifier.contains(pinned[name]), (
            f"requirements.lock pins {name}=={pinned[name]}, outside {requirement.specifier}"
        )


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from this checkout, installed alone into a fresh virtual environment.

    The environment gets the wheel and nothing else from this checkout. Its dependencies are
    this test run's own installed packages, the runtime ones alone (`runtime_packages`): a
    package only the dev extra brings is missing there, as on a machine that ran
    `pip install .`. Linking them keeps the test offline and quick.
    """
    work = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(work), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = work.glob("opsbot-*.whl")
    env = work / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel],
        capture_output=True,
        text=True,
        env=_isolated(os.environ),
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    runtime = runtime_packages(work / "runtime")
    (site / "zz_dependencies.pth").write_text(f"{runtime}\n")
    return env


def runtime_packages(folder: Path) -> Path:
    """A folder of links to this run's installed runtime packages, every one requirements.lock
    pins (the runtime dependencies, transitively) and nothing else: what each distribution
    installed at the top of site-packages, its metadata included."""
    from importlib.metadata import PackageNotFoundError, distribution

    folder.mkdir()
    for name in _lock_pins():
        try:
            dist = distribution(name)
        except PackageNotFoundError:  # pinned for another platform (the lock is for images)
            continue
        for top in {f.parts[0] for f in dist.files or () if f.parts[0] != ".."}:
            source, link = Path(str(dist.locate_file(top))), folder / top
            if source.exists() and not link.exists() and not top.endswith(".pth"):
                link.symlink_to(source)
    return folder


def _isolated(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without what would let the fresh venv import this checkout instead."""
    return {
        k: v for k, v in environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }


def _run(env: Path, *args: str, cwd: Path, **environ: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in _isolated(os.environ).items() if not k.startswith(("OPSBOT_", "SLACK_"))
    }
    clean.pop("DATABASE_URL", None)
    return subprocess.run(
        [str(env / "bin" / args[0]), *args[1:]],
        cwd=cwd,
        env={**clean, **environ},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_wheel_carries_its_code_migrations_and_runbooks(installed_wheel, tmp_path):
    probe = _run(
        installed_wheel,
        "python",
        "-c",
        "import bot, bot.db, bot.runbooks as r; print(bot.__file__); "
        "print(bot.db.migrations_dir()); print(r.runbooks_dir())",
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    package, migrations, runbooks = (Path(line) for line in probe.stdout.splitlines())
    assert package.is_relative_to(installed_wheel), "bot was imported from outside the wheel"
    assert migrations == package.parent / "_migrations"
    assert {p.name for p in (migrations / "versions").glob("0001_*.py")}
    assert runbooks == package.parent / "_runbooks"
    assert (runbooks / "kube-pod-crashlooping.md").is_file()


def test_the_installed_wheel_runs_the_demo_from_any_directory(installed_wheel, tmp_path):
    demo = _run(installed_wheel, "opsbot", "demo", "--no-color", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert demo.stdout.startswith("opsbot demo:")
    assert "The end." in demo.stdout
    assert list(tmp_path.iterdir()) == [], "the demo left files in the working directory"


def test_the_installed_wheel_upgrades_a_fresh_database(installed_wheel, tmp_path):
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    upgrade = _run(installed_wheel, "opsbot", "db", "upgrade", cwd=tmp_path, DATABASE_URL=url)
    assert upgrade.returncode == 0, upgrade.stderr[-3000:]
    assert "database at head" in upgrade.stdout
    assert (tmp_path / "prod.db").stat().st_size > 0


def test_the_dockerfile_installs_the_locked_versions_then_the_package_alone():
    steps = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.startswith("RUN pip install")
    ]
    assert steps[0] == "RUN pip install --require-hashes -r /tmp/requirements.lock"
    assert steps[1].startswith("RUN pip install --no-deps /src")
