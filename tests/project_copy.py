"""A project of its own for tests that run the pipeline: the working tree copied as a clone holds it."""
from __future__ import annotations

import subprocess
from pathlib import Path


def copy_working_tree(dest: Path) -> None:
    """The working tree (tracked + untracked, not ignored) copied into dest, as a user's clone
    would hold it: for tests that run the pipeline on a project of their own."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=root, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (root / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, dest / name)
