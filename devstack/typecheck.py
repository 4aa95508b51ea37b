"""`python -m devstack.typecheck`: mypy over the product as it is imported (`reciprocity.*`), with the
settings of pyproject.toml's [tool.mypy] (strict on contracts/, messaging/ and the pure domain modules).

The product's import names do not match its folders (pyproject's package-dir maps `reciprocity.balance`
to services/balance/, and so on), and the editable install resolves them with an import hook that mypy
cannot follow. So this builds the layout mypy needs, `var/typecheck/src/reciprocity/<name>` as symlinks
to the folders pyproject names (read from pyproject, so a new package is checked without a change here),
runs mypy on the `reciprocity` package from there, and prints each error under its file's real path.
Arguments are passed to mypy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = REPO_ROOT / "var" / "typecheck"
PACKAGE = "reciprocity"


def package_dirs(pyproject: Path = REPO_ROOT / "pyproject.toml") -> dict[str, str]:
    """Import name -> folder, as setuptools maps them (the wheel's layout)."""
    config = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]
    return dict(config["package-dir"])


def build_tree(root: Path = WORK_DIR / "src") -> Path:
    """`root/reciprocity/...` laid out by import name, every entry a symlink into the checkout."""
    mapping = package_dirs()
    top = root / PACKAGE
    top.mkdir(parents=True, exist_ok=True)
    wanted: dict[Path, Path] = {}
    for source in (REPO_ROOT / mapping[PACKAGE]).iterdir():  # the top package's own modules
        if source.suffix == ".py":
            wanted[top / source.name] = source
    for name, folder in mapping.items():
        parts = name.split(".")
        if len(parts) == 2:  # subpackages of those follow their folder
            wanted[top / parts[1]] = REPO_ROOT / folder
    for entry in top.iterdir():  # a package or module that is gone from pyproject or the checkout
        if entry not in wanted:
            entry.unlink()
    for link, target in wanted.items():
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return root


def real_paths(line: str, root: Path) -> str:
    """An error line's linked path (var/typecheck/src/reciprocity/balance/x.py) as the checkout's
    (services/balance/x.py)."""
    mapping = package_dirs()
    prefixes = [f"{root / PACKAGE}/"]  # mypy prints a path under the working directory relative to it
    if (root / PACKAGE).is_relative_to(REPO_ROOT):
        prefixes.append(f"{(root / PACKAGE).relative_to(REPO_ROOT)}/")
    for prefix in prefixes:
        if line.startswith(prefix):
            rest = line[len(prefix):]
            name, _, tail = rest.partition("/")
            folder = mapping.get(f"{PACKAGE}.{name}")
            return f"{mapping[PACKAGE]}/{rest}" if folder is None or not tail else f"{folder}/{tail}"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    root = build_tree()
    command = [sys.executable, "-m", "mypy", "--cache-dir", str(WORK_DIR / "cache"), "-p", PACKAGE,
               *(argv if argv is not None else sys.argv[1:])]
    # mypy_path first: the checkout's own top-level reciprocity/ (cwd) holds only part of the package.
    env = {**os.environ, "MYPYPATH": str(root)}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        print(real_paths(line, root))
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
