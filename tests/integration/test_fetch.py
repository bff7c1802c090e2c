"""fetch_thesaurus: official URL (a real http.server on loopback, or a closed port), mirror
fallback, and never clobbering a good dump with a bad download."""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tagflow.thesaurus.fetch import FetchError, fetch_thesaurus

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.ttl"
HTML = (b"<!DOCTYPE html>\n<html><head><title>UNESCO Thesaurus</title></head>"
        b"<body><p>The export moved.</p></body></html>\n")
ROUTES = {
    "/unesco-thesaurus.ttl": (200, TINY.read_bytes()),
    "/moved.html": (200, HTML),
    "/maintenance.txt": (200, b"Service temporarily unavailable, try again later.\n"),
    "/empty.ttl": (200, b""),
}


@pytest.fixture
def server():
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            status, body = ROUTES.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.hits = hits
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/x.ttl"


@pytest.fixture
def mirror(tmp_path):
    folder = tmp_path / "mirror" / "unesco-thesaurus"
    folder.mkdir(parents=True)
    (folder / "unesco-thesaurus-2024-01-01.ttl").write_text("@prefix old: <http://old/> .\n")
    (folder / "unesco-thesaurus-2024-06-01.ttl").write_text("@prefix new: <http://new/> .\n")
    (folder / "README.txt").write_text("not a dump")
    return tmp_path / "mirror"


def good_dump(tmp_path) -> Path:
    dest = tmp_path / "data" / "unesco-thesaurus.ttl"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("@prefix good: <http://good/> .\n")
    return dest


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir() if p.name != dest.name)


def test_download_from_official_url(server, tmp_path):
    dest = tmp_path / "data" / "unesco-thesaurus.ttl"
    url = server.base + "/unesco-thesaurus.ttl"
    assert fetch_thesaurus(url, dest, timeout=5) == url
    assert dest.read_bytes() == TINY.read_bytes()
    assert leftovers(dest) == []


def test_unreachable_url_falls_back_to_newest_mirror_dump(closed_url, mirror, tmp_path):
    dest = tmp_path / "data" / "unesco-thesaurus.ttl"
    source = fetch_thesaurus(closed_url, dest, mirror=str(mirror), timeout=5)
    assert source == str(mirror / "unesco-thesaurus" / "unesco-thesaurus-2024-06-01.ttl")
    assert dest.read_text() == "@prefix new: <http://new/> .\n"
    assert leftovers(dest) == []


def test_mirror_files_directly_in_the_mirror_dir(closed_url, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "unesco-thesaurus-2023-12-01.ttl").write_text("@prefix flat: <http://flat/> .\n")
    dest = tmp_path / "out.ttl"
    assert fetch_thesaurus(closed_url, dest, mirror=str(flat), timeout=5).endswith("2023-12-01.ttl")
    assert dest.read_text().startswith("@prefix flat:")


def test_unreachable_url_without_mirror(closed_url, tmp_path):
    dest = tmp_path / "data" / "unesco-thesaurus.ttl"
    with pytest.raises(FetchError) as err:
        fetch_thesaurus(closed_url, dest, timeout=5)
    message = str(err.value)
    assert f"official URL {closed_url}: ConnectError" in message
    assert "no --mirror given" in message
    assert not dest.exists()


def test_empty_mirror_listed_in_the_error(closed_url, tmp_path):
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    with pytest.raises(FetchError) as err:
        fetch_thesaurus(closed_url, tmp_path / "out.ttl", mirror=str(empty), timeout=5)
    assert closed_url in str(err.value)
    assert f"{empty}: no unesco-thesaurus*.ttl in the mirror" in str(err.value)


@pytest.mark.parametrize("path, problem", [
    ("/maintenance.txt", "does not look like Turtle/RDF"),
    ("/empty.ttl", "empty file"),
    ("/missing.ttl", "404"),
])
def test_bad_download_never_replaces_a_good_dump(server, tmp_path, path, problem):
    dest = good_dump(tmp_path)
    before = dest.read_bytes()
    with pytest.raises(FetchError, match=problem):
        fetch_thesaurus(server.base + path, dest, force=True, timeout=5)
    assert server.hits == [path]
    assert dest.read_bytes() == before
    assert leftovers(dest) == []


def test_html_page_is_not_a_dump(server, tmp_path):
    dest = good_dump(tmp_path)
    before = dest.read_bytes()
    try:
        with pytest.raises(FetchError, match="HTML page, not a thesaurus dump"):
            fetch_thesaurus(server.base + "/moved.html", dest, force=True, timeout=5)
    finally:
        assert dest.read_bytes() == before


def test_present_dump_kept_without_force(server, tmp_path):
    dest = good_dump(tmp_path)
    before = dest.read_bytes()
    assert fetch_thesaurus(server.base + "/unesco-thesaurus.ttl", dest, timeout=5) == "present"
    assert dest.read_bytes() == before
    assert server.hits == []  # not even a request


def test_force_replaces_a_present_dump(server, tmp_path):
    dest = good_dump(tmp_path)
    fetch_thesaurus(server.base + "/unesco-thesaurus.ttl", dest, force=True, timeout=5)
    assert dest.read_bytes() == TINY.read_bytes()


def test_empty_dest_is_fetched_again(server, tmp_path):
    dest = tmp_path / "unesco-thesaurus.ttl"
    dest.write_text("")
    fetch_thesaurus(server.base + "/unesco-thesaurus.ttl", dest, timeout=5)
    assert dest.read_bytes() == TINY.read_bytes()
