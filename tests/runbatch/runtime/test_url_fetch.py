"""Which URLs a runtime fetches for a row (RUNBATCH_FILE_FETCH_URLS), against a real local HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runbatch.runtime.settings import UrlFetchSettings
from runbatch.runtime.url_fetch import UrlRefused, describe_url, fetch_url


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.startswith("/to-metadata"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/hop"):
            self.send_response(301)
            self.send_header("Location", "/cat.png?sig=1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"PNG bytes of " + self.path.encode()
        self.send_response(200 if self.path.startswith("/cat.png") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def local() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _settings(urls: str = "public", allow: str = "") -> UrlFetchSettings:
    return UrlFetchSettings(file_fetch_urls=urls, file_fetch_urls_allow=allow)


def test_by_default_loopback_private_and_link_local_hosts_are_refused(local: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        fetch_url(f"http://{local}/cat.png", settings=_settings())
    assert str(refused.value) == (
        "its host 127.0.0.1 is a loopback address, and runtimes fetch only public ones "
        "(RUNBATCH_FILE_FETCH_URLS=public). Pass the image as a stage path or a data: URL, or have the "
        "operator list the host in RUNBATCH_FILE_FETCH_URLS_ALLOW on the workers"
    )
    for url, kind in (
        ("http://localhost/x", "a loopback"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local"),
        ("https://10.0.0.7/x", "a private"),
        ("http://[::ffff:192.168.1.1]/x", "a private"),
        ("http://0.0.0.0/x", "an unspecified"),
        ("http://100.64.0.1/x", "a reserved"),
    ):
        with pytest.raises(UrlRefused, match=f" is {kind} address, and runtimes fetch only public ones"):
            fetch_url(url, settings=_settings())


def test_the_allow_list_and_all_let_chosen_hosts_through_and_redirects_are_checked_again(local: str) -> None:
    for settings in (
        _settings(allow="10.0.0.0/8, 127.0.0.0/8"),
        _settings(allow="127.0.0.1"),
        _settings("all"),
    ):
        assert fetch_url(f"http://{local}/cat.png?sig=1", settings=settings) == b"PNG bytes of /cat.png?sig=1"
    assert fetch_url(f"http://{local}/hop", settings=_settings(allow="127.0.0.1")) == (
        b"PNG bytes of /cat.png?sig=1"
    )
    with pytest.raises(UrlRefused, match=r"^its host 169\.254\.169\.254 is a link-local address"):
        fetch_url(f"http://{local}/to-metadata", settings=_settings(allow="127.0.0.1"))
    with pytest.raises(OSError, match="^the server answered HTTP 404 Not Found$"):
        fetch_url(f"http://{local}/dog.png", settings=_settings("all"))
    with pytest.raises(OSError) as unsent:
        fetch_url(f"http://{local}/cat.png?sig=se cret", settings=_settings("all"))
    assert str(unsent.value) == (
        "its path has characters a request cannot carry (spaces, control characters); percent-encode them"
    )
    with pytest.raises(OSError, match="^it is over 0 MiB$"):
        fetch_url(f"http://{local}/cat.png", settings=_settings("all"), max_bytes=4)


def test_none_refuses_every_url_before_resolving_it() -> None:
    with pytest.raises(UrlRefused) as refused:
        fetch_url("https://example.com/cat.png", settings=_settings("none"))
    assert str(refused.value) == (
        "fetching URLs is turned off on this runtime (RUNBATCH_FILE_FETCH_URLS=none). Pass the image as a "
        "stage path or a data: URL"
    )


def test_the_environment_sets_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBATCH_FILE_FETCH_URLS", "none")
    with pytest.raises(UrlRefused, match="RUNBATCH_FILE_FETCH_URLS=none"):
        fetch_url("http://example.com/")
    assert UrlFetchSettings().file_fetch_urls_allow == ""


def test_messages_never_show_credentials_or_query_strings() -> None:
    signed = "https://alice:s3cret@bucket.s3.amazonaws.com/cats/cat.png?X-Amz-Signature=abc123#frag"
    assert describe_url(signed) == "https://bucket.s3.amazonaws.com/cats/cat.png"
    assert describe_url("data:image/png;base64,AAAA") == "a data URL (image/png;base64, 26 characters)"
    assert describe_url("pics/cat.png") == "pics/cat.png"
    assert describe_url("http://h/" + "a" * 300) == "http://h/" + "a" * 191 + "..."
