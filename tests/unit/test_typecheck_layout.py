"""`make lint`'s mypy sees the package by its import names: the layout devstack.typecheck builds."""

from __future__ import annotations

from pathlib import Path

from devstack import typecheck


def test_every_package_of_pyproject_is_laid_out_under_its_import_name(tmp_path: Path) -> None:
    root = typecheck.build_tree(tmp_path / "src")
    mapping = typecheck.package_dirs()
    for name, folder in mapping.items():
        if name.count(".") == 1:
            link = root.joinpath(*name.split("."))
            assert link.is_symlink() and link.resolve() == (typecheck.REPO_ROOT / folder).resolve(), name
    assert (root / "reciprocity" / "__init__.py").resolve() == typecheck.REPO_ROOT / "reciprocity" / "__init__.py"
    (root / "reciprocity" / "gone").symlink_to(tmp_path)  # a package no longer in pyproject
    typecheck.build_tree(root)
    assert not (root / "reciprocity" / "gone").exists()


def test_errors_are_reported_under_the_checkouts_own_paths(tmp_path: Path) -> None:
    root = tmp_path / "src"
    line = f"{root}/reciprocity/balance/queries.py:12: error: something  [misc]"
    assert typecheck.real_paths(line, root) == "services/balance/queries.py:12: error: something  [misc]"
    top_module = f"{root}/reciprocity/migrate.py:3: error: x"
    assert typecheck.real_paths(top_module, root) == "reciprocity/migrate.py:3: error: x"
    assert typecheck.real_paths("Success: no issues found", root) == "Success: no issues found"
