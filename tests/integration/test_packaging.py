"""A non-editable install (the Dockerfile's) gets every data file the code reads at run time: the JSON
schemas and golden events, the web's templates and static files, notify's email templates.

Builds a real wheel from a copy of the sources (setuptools writes build/ and *.egg-info next to them)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _data_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}


def test_every_folder_of_data_files_is_a_listed_package() -> None:
    """setuptools copies a folder's files only when the folder is a listed package ("Package would be
    ignored" otherwise)."""
    config = _setuptools_config()
    listed = set(config["packages"])
    for package, folder in config["package-dir"].items():
        for sub in sorted((ROOT / folder).rglob("*")):
            if not sub.is_dir() or "__pycache__" in sub.parts or not sub.name.isidentifier():
                continue
            if any(p.is_file() and p.suffix != ".pyc" for p in sub.iterdir()):
                name = package + "." + ".".join(sub.relative_to(ROOT / folder).parts)
                assert name in listed, f"{sub.relative_to(ROOT)} holds files but {name} is not in packages"


def test_the_wheel_holds_the_schemas_golden_events_and_templates(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    config = _setuptools_config()
    # devstack/ beside the product's folders, as in the checkout: the explicit package list must leave it out.
    for folder in sorted({f.split("/")[0] for f in config["package-dir"].values()} | {"devstack"}):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "wheel"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out), str(source)], capture_output=True, text=True, timeout=240)
    assert built.returncode == 0, built.stderr
    assert "would be ignored" not in built.stdout + built.stderr
    (wheel,) = out.glob("reciprocity-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package, folder in {"contracts/schemas": "contracts/schemas", "contracts/golden": "contracts/golden",
                            "web/templates": "web/templates", "web/static": "web/static",
                            "notify/templates": "services/notify/templates"}.items():
        expected = {f"reciprocity/{package}/{name}" for name in _data_files(ROOT / folder)}
        assert expected, folder
        assert expected <= names, sorted(expected - names)
    assert any(n.startswith("reciprocity/contracts/schemas/ExchangeRecorded.v2.json") for n in names)
    assert "reciprocity/web/templates/partials/_exchange_form.html" in names
    # Every service migrates its schema at start from the migrations it ships (env.py, revisions, template).
    for package, folder in {"balance": "services/balance", "notify": "services/notify", "web": "web",
                            "ledger": "services/ledger"}.items():
        migrations = ROOT / folder / "migrations"
        shipped_migrations = {f"reciprocity/{package}/migrations/{p.relative_to(migrations).as_posix()}"
                              for p in migrations.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        assert f"reciprocity/{package}/migrations/script.py.mako" in shipped_migrations
        assert shipped_migrations <= names, sorted(shipped_migrations - names)
    # Local tooling (the broker, PostgreSQL and mail-sink launchers) is not part of the product.
    launchers = {"local_kafka.py", "local_postgres.py", "mail_sink.py"}
    assert launchers <= {p.name for p in _python_files(ROOT / "devstack")}
    shipped = {n for n in names if n.split("/")[0] == "devstack" or Path(n).name in launchers}
    assert not shipped, sorted(shipped)


def _python_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.py") if "__pycache__" not in p.parts]


def test_the_product_never_imports_the_local_tooling() -> None:
    """The wheel leaves devstack/ out, so a product module importing it would fail in the image."""
    config = _setuptools_config()
    importing = []
    for folder in sorted(set(config["package-dir"].values())):
        for path in _python_files(ROOT / folder):
            text = path.read_text()
            if re.search(r"^\s*(from|import)\s+devstack\b", text, re.MULTILINE):
                importing.append(path.relative_to(ROOT).as_posix())
    assert importing == []
