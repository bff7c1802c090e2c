"""What `tagflow tagger tag` reads: a text or HTML file (one document) or JSONL (a batch)."""
from __future__ import annotations

import json

import pytest

from tagflow.cli.tagger import html_to_text, read_documents
from tagflow.core.errors import DataError


def test_html_keeps_visible_text_only():
    html = ("<html><head><title>T</title><style>p {color: red}</style><script>var x = 1;</script></head>"
            "<body><h1>Museums</h1><p>Heritage <b>sites</b> &amp; archives</p><noscript>no</noscript></body></html>")
    text = html_to_text(html)
    assert "Museums" in text and "archives" in text and "&" in text
    assert "color" not in text and "var x" not in text and "no" not in text.split()


def test_text_html_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("Museums of the region.")
    (tmp_path / "b.html").write_text("<p>Teachers</p><script>x()</script>")
    (tmp_path / "c.jsonl").write_text(json.dumps({"id": "d1", "text": "one"}) + "\n"
                                      + json.dumps({"text": "two"}) + "\n")
    assert read_documents(str(tmp_path / "a.txt")) == ([{"id": "a", "text": "Museums of the region."}], False)
    assert read_documents(str(tmp_path / "b.html")) == ([{"id": "b", "text": "Teachers"}], False)
    assert read_documents(str(tmp_path / "c.jsonl")) == (
        [{"id": "d1", "text": "one"}, {"id": "2", "text": "two"}], True)


@pytest.mark.parametrize("name, content, message", [
    ("missing.txt", None, "no such file"),
    ("doc.pdf", "%PDF-1.4", "not read yet"),
    ("bad.jsonl", '{"id": 1}\n', 'needs a "text" string'),
    ("broken.jsonl", "{not json\n", "not valid JSON"),
])
def test_bad_input_is_named(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        read_documents(str(tmp_path / name))
