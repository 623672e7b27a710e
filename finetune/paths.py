"""Where the project's files live: the adapters folder, the votes database, the bundled data folder.

One settings object, resolved from environment variables, else from the package's own location, never
from the working directory (a command started in another folder finds the same files):

| path         | environment variable  | default in a checkout | default after a non-editable install |
|--------------|-----------------------|-----------------------|--------------------------------------|
| adapters     | MEDARENA_ADAPTERS_DIR | <checkout>/adapters   | $XDG_DATA_HOME/medarena/adapters     |
| votes db     | MEDARENA_VOTES_DB     | <checkout>/votes.db   | $XDG_DATA_HOME/medarena/votes.db     |
| bundled data | MEDARENA_DATA_DIR     | <checkout>/data       | the installed package data folder    |

A checkout is recognised by the `pyproject.toml` beside the `finetune` package. `finetune` never imports
`arena`; the arena, the app and the evaluation read these paths from here.

    from finetune.paths import project_paths
    paths = project_paths()          # or project_paths(environ) with an explicit mapping
    paths.adapters_dir, paths.votes_db, paths.data_dir

Run as: python -m finetune.paths     (prints the three paths this process would use)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ADAPTERS_ENV = "MEDARENA_ADAPTERS_DIR"
VOTES_DB_ENV = "MEDARENA_VOTES_DB"
DATA_ENV = "MEDARENA_DATA_DIR"
PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_ROOT = PACKAGE_DIR.parent
# Where a non-editable install keeps the bundled data, inside the finetune package.
PACKAGED_DATA_DIR = PACKAGE_DIR / "bundled_data"


@dataclass(frozen=True)
class ProjectPaths:
    """The three places the project reads and writes; every field an absolute path."""

    adapters_dir: Path
    votes_db: Path
    data_dir: Path


def is_checkout(root: Path = CHECKOUT_ROOT) -> bool:
    """Whether the packages run from a source checkout (editable install or plain clone)."""
    return (root / "pyproject.toml").is_file() and (root / "finetune").is_dir()


def user_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_DATA_HOME/medarena, else ~/.local/share/medarena: where an installed copy keeps its files."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".local" / "share") / "medarena"


def project_paths(environ: Mapping[str, str] | None = None) -> ProjectPaths:
    """Adapters folder, votes database and bundled data folder: environment first, then the package location."""
    env = os.environ if environ is None else environ

    def configured(name: str) -> Path | None:
        value = env.get(name, "").strip()
        return Path(value).expanduser().resolve() if value else None

    home = CHECKOUT_ROOT if is_checkout() else user_data_dir(env)
    packaged_data = CHECKOUT_ROOT / "data" if is_checkout() else PACKAGED_DATA_DIR
    return ProjectPaths(
        adapters_dir=configured(ADAPTERS_ENV) or home / "adapters",
        votes_db=configured(VOTES_DB_ENV) or home / "votes.db",
        data_dir=configured(DATA_ENV) or packaged_data,
    )


if __name__ == "__main__":
    for field, value in vars(project_paths()).items():
        print(f"{field:<13} {value}")
