"""Documents in: text, HTML, PDF and DOCX files (tagflow.core.documents), and what
`tagflow tagger tag` reads: one such file (one document) or JSONL (a batch)."""
from __future__ import annotations

import json

import pytest

from tagflow.cli.tagger import read_documents
from tagflow.core.documents import extract_text, html_to_text, kind_of
from tagflow.core.errors import DataError
from tests.documents import make_docx, make_pdf

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_html_keeps_visible_text_only():
    html = ("<html><head><title>T</title><style>p {color: red}</style><script>var x = 1;</script></head>"
            "<body><h1>Museums</h1><p>Heritage <b>sites</b> &amp; archives</p><noscript>no</noscript></body></html>")
    text = html_to_text(html)
    assert "Museums" in text and "archives" in text and "&" in text
    assert "color" not in text and "var x" not in text and "no" not in text.split()


def test_pdf_text_lines_in_order():
    pdf = make_pdf(["The museum (founded 1901) reopened.", "Cultural heritage funding helped."])
    assert extract_text(pdf, "report.pdf") == "The museum (founded 1901) reopened.\nCultural heritage funding helped."
    assert extract_text(pdf, "application/pdf").startswith("The museum")


def test_docx_paragraphs_and_tables():
    data = make_docx(["Teachers and universities.", "   ", "Second paragraph."],
                     table=[["Subject", "Museums"], ["Year", "2026"]])
    text = extract_text(data, "minutes.docx")
    assert text.splitlines() == ["Teachers and universities.", "Second paragraph.",
                                 "Subject | Museums", "Year | 2026"]
    assert extract_text(data, DOCX_TYPE) == text


def test_text_encodings():
    assert extract_text("Éducation".encode("utf-8-sig"), "a.txt") == "Éducation"
    assert extract_text("Éducation".encode("utf-16"), "text/plain; charset=utf-16") == "Éducation"
    assert extract_text("Éducation".encode("cp1252"), "a.txt") == "Éducation"
    assert extract_text(b"<p>Museums</p><script>x()</script>", "text/html") == "Museums"


@pytest.mark.parametrize("kind, expected", [
    ("a.PDF", "pdf"), ("dir/b.docx", "docx"), ("c.htm", "html"), ("notes", "text"), ("d.md", "text"),
    ("application/pdf", "pdf"), ("text/html; charset=utf-8", "html"), ("text/csv", "text"), (DOCX_TYPE, "docx"),
])
def test_kind_from_name_or_media_type(kind, expected):
    assert kind_of(kind) == expected


@pytest.mark.parametrize("data, kind, message", [
    (b"", "a.pdf", "a.pdf: the file is empty"),
    (b"%PDF-1.4\n1 0 obj broken", "a.pdf", "a.pdf: not a readable PDF file"),
    (b"PK\x03\x04 not a zip", "a.docx", "a.docx: not a readable DOCX file"),
    (b"hello", "a.doc", "a.doc: old Word .doc files are not read; send plain text, HTML, PDF or DOCX"),
    (b"hello", "a.xlsx", r"a.xlsx: .xlsx files are not read"),
    (b"\x89PNG", "image/png", "image/png documents are not read"),
    (b"\x00\x01\x02binary", "a.txt", "binary file"),
    (b"  \n\t", "a.txt", "no text found"),
    (b"<script>only()</script>", "a.html", "no text found in the HTML file"),
])
def test_unreadable_documents_get_one_line(data, kind, message):
    with pytest.raises(DataError, match=message) as caught:
        extract_text(data, kind)
    assert "\n" not in str(caught.value)


def test_pdf_without_text_says_so():
    with pytest.raises(DataError, match="no text found in the PDF file .*OCR"):
        extract_text(make_pdf([]), "scan.pdf")


def test_text_html_pdf_docx_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("Museums of the region.")
    (tmp_path / "b.html").write_text("<p>Teachers</p><script>x()</script>")
    (tmp_path / "c.jsonl").write_text(json.dumps({"id": "d1", "text": "one", "title": "First"}) + "\n"
                                      + json.dumps({"text": "two"}) + "\n")
    (tmp_path / "d.pdf").write_bytes(make_pdf(["Archaeological sites"]))
    (tmp_path / "e.docx").write_bytes(make_docx(["Primary education"]))
    assert read_documents(str(tmp_path / "a.txt")) == ([{"id": "a", "text": "Museums of the region."}], False)
    assert read_documents(str(tmp_path / "b.html")) == ([{"id": "b", "text": "Teachers"}], False)
    assert read_documents(str(tmp_path / "c.jsonl")) == (
        [{"id": "d1", "text": "First\n\none"}, {"id": "2", "text": "two"}], True)   # a title leads its text
    assert read_documents(str(tmp_path / "d.pdf")) == ([{"id": "d", "text": "Archaeological sites"}], False)
    assert read_documents(str(tmp_path / "e.docx")) == ([{"id": "e", "text": "Primary education"}], False)


@pytest.mark.parametrize("name, content, message", [
    ("missing.txt", None, "no such file"),
    ("doc.pdf", "%PDF-1.4", "doc.pdf: not a readable PDF file"),
    ("doc.odt", "x", "OpenDocument .odt files are not read"),
    ("bad.jsonl", '{"id": 1}\n', 'needs a "text" string'),
    ("title.jsonl", '{"text": "a", "title": ["b"]}\n', 'a "title" string'),
    ("broken.jsonl", "{not json\n", "not valid JSON"),
])
def test_bad_input_is_named(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        read_documents(str(tmp_path / name))
