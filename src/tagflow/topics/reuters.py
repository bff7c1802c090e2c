"""Reuters-21578 from its original SGML distribution: fetch it, parse it with the standard
library (the SGML is not valid XML: latin-1 bytes, `&#n;` character references, unescaped `&`
and `<` here and there), one row per <REUTERS> element.

Columns: id (NEWID), title, body, topics (list of topic codes), lewissplit (TRAIN | TEST |
NOT-USED), topics_attr (the TOPICS attribute: YES | NO | BYPASS), text_type (NORM | BRIEF | UNPROC).
"""
from __future__ import annotations

import html
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..core.errors import DataError
from ..core.io import atomic_path
from ..core.log import get_logger

log = get_logger("reuters")

SGML_GLOB = "reut2-*.sgm"
_DOC = re.compile(r"<REUTERS\b([^>]*)>(.*?)</REUTERS>", re.S)
_ATTR = re.compile(r'([A-Z-]+)="([^"]*)"')
_D = re.compile(r"<D>(.*?)</D>", re.S)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _element(tag: str, text: str) -> str | None:
    match = re.search(rf"<{tag}\b[^>]*>(.*?)</{tag}>", text, re.S)
    return None if match is None else match.group(1)


def _clean(text: str | None) -> str:
    if not text:
        return ""
    text = _CONTROL.sub(" ", html.unescape(text))   # &#3; (end of text) and other controls
    text = text.replace("\r", "")
    text = re.sub(r"\s*\bReuter\s*$", "", text.strip())  # the sign-off every story ends with
    return text.strip()


def parse_sgml(text: str, source: str = "<sgml>") -> list[dict]:
    """Every <REUTERS> element of one SGML file's text."""
    rows = []
    for attrs_text, inner in _DOC.findall(text):
        attrs = dict(_ATTR.findall(attrs_text))
        if "NEWID" not in attrs:
            raise DataError(f"{source}: a <REUTERS> element has no NEWID attribute")
        topics_el = _element("TOPICS", inner) or ""
        text_match = re.search(r"<TEXT\b([^>]*)>(.*?)</TEXT>", inner, re.S)
        text_attrs, body_text = (text_match.group(1), text_match.group(2)) if text_match else ("", "")
        text_type = dict(_ATTR.findall(text_attrs)).get("TYPE", "NORM")
        title = _clean(_element("TITLE", body_text))
        body = _element("BODY", body_text)
        if body is None and text_type == "UNPROC":  # unprocessed stories: the text is the body
            body = body_text
        rows.append({
            "id": int(attrs["NEWID"]),
            "title": title,
            "body": _clean(body),
            "topics": [html.unescape(t).strip() for t in _D.findall(topics_el) if t.strip()],
            "lewissplit": attrs.get("LEWISSPLIT", ""),
            "topics_attr": attrs.get("TOPICS", ""),
            "text_type": text_type,
        })
    return rows


def read_dir(raw_dir: str | Path):
    """The whole distribution in `raw_dir` (reut2-*.sgm) as one DataFrame, sorted by id."""
    import pandas as pd

    files = sorted(Path(raw_dir).glob(SGML_GLOB))
    if not files:
        raise DataError(f"{raw_dir}: no {SGML_GLOB} files (run `tagflow topics fetch`)")
    rows = []
    for path in files:  # a file may hold no documents (a distribution with the test part removed)
        rows += parse_sgml(path.read_bytes().decode("latin-1"), str(path))
    if not rows:
        raise DataError(f"{raw_dir}: no <REUTERS> documents in {len(files)} SGML files")
    frame = pd.DataFrame(rows).sort_values("id", kind="stable").reset_index(drop=True)
    duplicated = frame["id"][frame["id"].duplicated()]
    if len(duplicated):
        raise DataError(f"{raw_dir}: NEWID {int(duplicated.iloc[0])} occurs more than once")
    return frame


# ---------------------------------------------------------------- fetch


def _looks_like_targz(path: Path) -> str | None:
    head = path.read_bytes()[:2]
    return None if head == b"\x1f\x8b" else f"not a gzip archive (starts with {head!r})"


def _extract(archive: Path, dest: Path) -> int:
    """The SGML files of the archive (nothing else, no paths outside `dest`) -> dest."""
    count = 0
    with atomic_path(dest, is_dir=True) as tmp:
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar.getmembers():
                    name = Path(member.name).name
                    if member.isfile() and Path(name).match(SGML_GLOB):
                        with tar.extractfile(member) as src, (tmp / name).open("wb") as out:
                            shutil.copyfileobj(src, out)
                        count += 1
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"{archive}: not a readable tar.gz ({exc})") from exc
        if not count:
            raise DataError(f"{archive}: no {SGML_GLOB} files inside")
    return count


def _copy_files(files: list[Path], dest: Path) -> None:
    with atomic_path(dest, is_dir=True) as tmp:
        tmp.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copyfile(path, tmp / path.name)


def _from_mirror(mirror: Path, dest: Path) -> str:
    """<mirror>/reuters21578/ (or <mirror>): the SGML files, or the distribution's tar.gz."""
    for folder in (mirror / "reuters21578", mirror):
        files = sorted(folder.glob(SGML_GLOB))
        if files:
            _copy_files(files, dest)
            return str(folder)
        archives = sorted(folder.glob("reuters21578*.tar.gz"))
        if archives:
            _extract(archives[-1], dest)
            return str(archives[-1])
    raise DataError(f"{mirror}: no {SGML_GLOB} files and no reuters21578.tar.gz in the mirror")


def fetch_reuters(url: str, dest: str | Path, mirror: str | None = None, force: bool = False,
                  timeout: float = 60.0) -> str:
    """The SGML files into `dest`: the official archive first, then a mirror. Returns the source."""
    from ..thesaurus.fetch import download, official_or_mirror

    dest = Path(dest)
    if any(dest.glob(SGML_GLOB)) and not force:
        log.info("%s present; use --force to fetch again", dest)
        return "present"
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "reuters21578.tar.gz"

        def from_url() -> None:
            download(url, archive, timeout, check=_looks_like_targz)
            log.info("%s: %d SGML files", url, _extract(archive, dest))

        return official_or_mirror("Reuters-21578", url, from_url, mirror,
                                  lambda folder: _from_mirror(folder, dest), dest)
