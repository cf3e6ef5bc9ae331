"""Ships the top-level migrations/ and runbooks/ inside the wheel (pyproject.toml has the rest).

setuptools' `packages.find` cannot map a folder to a sub-package, so this file adds two: the
Alembic environment and revisions as `bot._migrations`, the example runbooks as `bot._runbooks`.
The checkout keeps its layout (`migrations/versions/`, `runbooks/`); `bot.db.migrations_dir()` and
`bot.runbooks.library.runbooks_dir()` find them in either place. Package data (templates, the
demo org, the mako template, the runbooks) is listed in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["bot", "bot.*", "handlers", "handlers.*"]),
        "bot._migrations",
        "bot._migrations.versions",
        "bot._runbooks",
    ],
    package_dir={"bot._migrations": "migrations", "bot._runbooks": "runbooks"},
)
