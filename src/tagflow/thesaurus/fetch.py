"""Obtain the thesaurus dump: the official URL first, then a local mirror directory when one is
given (air-gapped machines, CI). Downloads land in a temporary file and are checked before they
replace anything, so a failed or truncated fetch never clobbers a good dump."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..core.errors import DataError
from ..core.io import atomic_path
from ..core.log import get_logger

log = get_logger("fetch")


class FetchError(DataError):
    pass


def _looks_like_rdf(path: Path) -> str | None:
    head = path.read_bytes()[:4096].lstrip()
    if not head:
        return "empty file"
    lowered = head[:200].lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered:
        return "is an HTML page, not a thesaurus dump"
    if head.startswith((b"@prefix", b"@base", b"PREFIX", b"<?xml", b"<rdf:RDF", b"#")):
        return None
    return f"does not look like Turtle/RDF (starts with {head[:40]!r})"


def download(url: str, dest: Path, timeout: float, check=_looks_like_rdf) -> None:
    """`url` -> `dest`, atomically; `check(tmp_path)` returns a problem (the file is then refused)."""
    import httpx

    with atomic_path(dest) as tmp:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as resp:
            resp.raise_for_status()
            with tmp.open("wb") as fh:
                for block in resp.iter_bytes(1 << 20):
                    fh.write(block)
        problem = check(tmp)
        if problem:
            raise FetchError(f"{url}: {problem}")


def _from_mirror(mirror: Path, dest: Path) -> Path:
    """Newest dated dump in <mirror>/unesco-thesaurus/ (or in <mirror> itself)."""
    for folder in (mirror / "unesco-thesaurus", mirror):
        # dated dumps (unesco-thesaurus-YYYY-MM-DD.ttl) sort by date; an undated one comes first
        candidates = sorted(folder.glob("unesco-thesaurus*.ttl"),
                            key=lambda p: (bool(re.search(r"\d{4}-\d{2}-\d{2}", p.name)), p.name))
        if candidates:
            with atomic_path(dest) as tmp:
                shutil.copyfile(candidates[-1], tmp)
            return candidates[-1]
    raise FetchError(f"{mirror}: no unesco-thesaurus*.ttl in the mirror")


def fetch_thesaurus(url: str, dest: str | Path, mirror: str | None = None, force: bool = False,
                    timeout: float = 30.0) -> str:
    dest = Path(dest)
    if dest.exists() and dest.stat().st_size > 0 and not force:
        log.info("%s present; use --force to fetch again", dest)
        return "present"
    return official_or_mirror("the thesaurus dump", url, lambda: download(url, dest, timeout),
                              mirror, lambda folder: _from_mirror(folder, dest), dest)


def official_or_mirror(what: str, url: str, from_url, mirror: str | None, from_mirror, dest) -> str:
    """`from_url()` first; when it fails, `from_mirror(Path(mirror))` (returns its source). Either
    failure is kept for the one error naming both. Returns where the data came from."""
    errors = []
    try:
        from_url()
        log.info("%s -> %s", url, dest)
        return url
    except Exception as exc:  # network errors come in many types; all mean "try the mirror"
        errors.append(f"official URL {url}: {type(exc).__name__}: {exc}")
    if mirror:
        try:
            source = from_mirror(Path(mirror))
            log.info("official URL unreachable; copied mirror %s -> %s", source, dest)
            return str(source)
        except DataError as exc:
            errors.append(str(exc))
    raise FetchError(f"could not obtain {what}:\n  " + "\n  ".join(errors)
                     + ("" if mirror else "\n  (no --mirror given)"))
