"""A migrated, empty Prefect server database to start servers from (conftest's
prefect_db_template says where it is kept)."""
from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path


def seed_prefect_db(db: Path, template: Path) -> None:
    if template.exists():   # the server still applies any migration the copy lacks
        shutil.copyfile(template, db)


def save_prefect_db(db: Path, template: Path) -> None:
    """Keep a started (so migrated) server's database as the template, unless one is kept."""
    if template.exists():
        return
    partial = template.with_suffix(".partial")
    # sqlite's backup API copies a consistent snapshot while the server keeps the file open.
    with sqlite3.connect(db) as src, sqlite3.connect(partial) as dst:
        src.backup(dst)
    os.replace(partial, template)
