"""Documents in: the text of a plain-text, HTML, PDF or DOCX file, for the CLI and the service.

`extract_text(data, kind)` takes the file's bytes and its name or media type and returns its text;
anything it cannot read (an unknown kind, a corrupt or encrypted file, a file without text) is a
`DataError` with one line saying what and why.
"""
from __future__ import annotations

import io
import re
from pathlib import PurePath

from .errors import DataError

# kind -> (file suffixes, media types)
KINDS = {
    "text": ((".txt", ".text", ".md", ".rst", ""), ("text/plain", "text/markdown")),
    "html": ((".html", ".htm", ".xhtml"), ("text/html", "application/xhtml+xml")),
    "pdf": ((".pdf",), ("application/pdf",)),
    "docx": ((".docx",), ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",)),
}
SUFFIXES = sorted(s for suffixes, _ in KINDS.values() for s in suffixes if s)
_MEDIA_TYPE = re.compile(r"(application|text|image|audio|video|font|model|multipart|message)/[\w.+-]+")
_NOT_READ = {".doc": "old Word .doc", ".odt": "OpenDocument .odt", ".rtf": "RTF"}


def kind_of(filename_or_mediatype: str) -> str:
    """'text', 'html', 'pdf' or 'docx' for a file name (by suffix) or a media type."""
    value = (filename_or_mediatype or "").strip()
    media = value.split(";")[0].strip().lower()
    if _MEDIA_TYPE.fullmatch(media):
        for kind, (_, types) in KINDS.items():
            if media in types:
                return kind
        if media.startswith("text/"):
            return "text"
        what = f"{media} documents are"
    else:
        suffix = PurePath(value).suffix.lower()
        for kind, (suffixes, _) in KINDS.items():
            if suffix in suffixes:
                return kind
        what = f"{value}: {_NOT_READ.get(suffix, suffix)} files are"
    raise DataError(f"{what} not read; send plain text, HTML, PDF or DOCX "
                    f"({', '.join(SUFFIXES)})")


def extract_text(data: bytes, filename_or_mediatype: str) -> str:
    """The text of a document given as bytes; its kind comes from the file name or media type.
    Raises DataError (one line) for an unsupported kind, a corrupt file or one without text."""
    kind = kind_of(filename_or_mediatype)
    label = filename_or_mediatype or kind
    if not data:
        raise DataError(f"{label}: the file is empty")
    try:
        text = {"text": _decode, "html": lambda d: html_to_text(_decode(d)),
                "pdf": _pdf_text, "docx": _docx_text}[kind](data)
    except DataError as exc:
        raise DataError(f"{label}: {exc}") from None
    except Exception as exc:     # parsers raise many kinds of errors on broken files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{label}: not a readable {kind.upper()} file ({reason[:200]})") from None
    if not text.strip():
        hint = " (a scanned PDF needs OCR first)" if kind == "pdf" else ""
        raise DataError(f"{label}: no text found in the {kind.upper()} file{hint}")
    return text


def _decode(data: bytes) -> str:
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError("looks like a binary file, not text")
    for encoding in ("utf-8-sig", "utf-16") if data.startswith((b"\xff\xfe", b"\xfe\xff")) else ("utf-8-sig",):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return data.decode("cp1252", errors="replace")


def html_to_text(html: str) -> str:
    """Visible text of an HTML page (scripts, styles and markup dropped), stdlib only."""
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts, self.skip = [], 0

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("script", "style", "noscript", "template")

        def handle_endtag(self, tag):
            self.skip -= tag in ("script", "style", "noscript", "template") and self.skip > 0

        def handle_data(self, data):
            if not self.skip and data.strip():
                self.parts.append(data.strip())

    parser = Text()
    parser.feed(html)
    return "\n".join(parser.parts)


def _pdf_text(data: bytes) -> str:
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)   # its repair warnings; our error says it once

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            reader.decrypt("")            # many "protected" PDFs open with an empty password
        except Exception:
            raise DataError("the PDF is encrypted; send an unprotected copy") from None
    return "\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()


def _docx_text(data: bytes) -> str:
    import docx

    document = docx.Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                parts.append(" | ".join(dict.fromkeys(cells)))   # merged cells repeat
    return "\n".join(parts)
