"""Headers every answer carries (Content-Security-Policy, cookie flags) and the request-size gate that
answers from the headers alone: an over-long Content-Length gets 413 and a chunked body 411 before a
byte of the body is read. (``check --deploy`` is tested in tests/unit/test_settings.py; the browser
test reports CSP violations while the studio works.)"""
import pytest

pytestmark = pytest.mark.django_db


class WatchedBody:
    """A request body that records how much of it was read: the gate must read none."""

    def __init__(self, content: bytes):
        self.content = content
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.content[self.read_bytes:] if size < 0 else self.content[self.read_bytes:self.read_bytes + size]
        self.read_bytes += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def _csp(response) -> dict[str, list[str]]:
    directives = [part.split() for part in response["Content-Security-Policy"].split(";")]
    return {words[0]: words[1:] for words in directives if words}


@pytest.mark.parametrize("path", ["/", "/api/session/", "/api/nothing/", "/static/plotly.min.js"])
def test_every_answer_carries_a_content_security_policy_without_inline_scripts(client, path):
    policy = _csp(client.get(path))

    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


def test_session_cookie_is_http_only_and_cookies_same_site_lax(client):
    client.post("/api/projects/", {"name": "Song"}, content_type="application/json")  # stores a visitor id
    response = client.get("/api/session/")

    session, csrf = client.cookies["sessionid"], response.cookies["csrftoken"]
    assert session["httponly"] and session["samesite"] == "Lax"
    assert csrf["samesite"] == "Lax"


def test_an_over_long_upload_is_refused_from_its_content_length_before_the_body_is_read(client, settings):
    project = client.post("/api/projects/", {"name": "Song"}, content_type="application/json").json()
    settings.MIXREF_UPLOAD_MAX_BYTES = 1024 * 1024
    body = WatchedBody(b"x" * 4096)

    response = client.post(f"/api/projects/{project['id']}/stems/", content_type="multipart/form-data; boundary=b",
                           CONTENT_LENGTH=str(600 * 1024 * 1024), **{"wsgi.input": body})

    assert response.status_code == 413
    assert response.json()["error"] == {"code": "upload_too_large", "details": {},
                                        "message": "The upload is larger than the limit of 1 MB."}
    assert body.read_bytes == 0


def test_a_chunked_body_gets_a_clear_411(client):
    project = client.post("/api/projects/", {"name": "Song"}, content_type="application/json").json()
    body = WatchedBody(b"5\r\nhello\r\n0\r\n\r\n")

    response = client.post(f"/api/projects/{project['id']}/stems/", content_type="multipart/form-data; boundary=b",
                           CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input": body})

    assert response.status_code == 411
    assert "Content-Length" in response.json()["error"]["message"]
    assert body.read_bytes == 0


def test_a_content_length_that_is_not_a_number_answers_400(client):
    response = client.post("/api/projects/", content_type="application/json", CONTENT_LENGTH="lots")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "The Content-Length header is not a number."
