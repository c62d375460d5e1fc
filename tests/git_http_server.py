"""A real git server over HTTP on loopback: ``git http-backend`` (the installed git's CGI) behind a threading HTTP
server on 127.0.0.1, with HTTP Basic auth and two credentials.

- ``read_token``: fetch and clone; any push is refused with 403.
- ``push_token``: fetch, clone and push.

A request without a valid credential gets 401 (so git, with no credential to offer, fails). A token is accepted as
the Basic password (any user name, as git hosts take ``x-access-token:<token>``) or as the user name with an empty
password (the ``https://<token>@host/...`` URL form).

Use::

    with GitHttpServer(tmp_path / "served") as server:     # or server.start() ... server.stop()
        bare = server.repo_path("gitops")                   # <root>/gitops.git: create or bootstrap it locally
        gitops.bootstrap(GitOpsConfig(url=str(bare)))
        server.url("gitops")                                # http://127.0.0.1:<port>/gitops.git (no userinfo)
        server.url("gitops", token=server.push_token)       # http://<token>@127.0.0.1:<port>/gitops.git
        server.read_token, server.push_token                # the two credentials (random per server)
        server.requests                                     # [(method, path, user-or-None, status), ...]

The ``git_http_server`` fixture (session-scoped, registered by tests/conftest.py) yields a started server; give each
test its own repo name (``tmp_path.name`` is unique).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import pytest

READ, PUSH = "read", "push"


class GitHttpServer:
    """Serves the bare repos under ``root`` (``<root>/<name>.git``) at ``http://127.0.0.1:<port>/<name>.git``."""

    def __init__(self, root: Path, read_token: str | None = None, push_token: str | None = None) -> None:
        self.root = Path(root)
        self.read_token = read_token or f"read-{secrets.token_hex(16)}"
        self.push_token = push_token or f"push-{secrets.token_hex(16)}"
        self.requests: list[tuple[str, str, str | None, int]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> GitHttpServer:
        self.root.mkdir(parents=True, exist_ok=True)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="git-http-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GitHttpServer:
        return self.start()

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return int(self._server.server_address[1])

    def url(self, name: str, token: str | None = None) -> str:
        """The repo's HTTP URL; with ``token``, in the ``http://<token>@host/...`` form."""
        userinfo = f"{token}@" if token else ""
        return f"http://{userinfo}127.0.0.1:{self.port}/{name}.git"

    def repo_path(self, name: str) -> Path:
        """Where the bare repo ``name`` lives (create it, e.g. with ``git init --bare`` or gitops.bootstrap)."""
        return self.root / f"{name}.git"

    def access(self, authorization: str | None) -> tuple[str | None, str | None]:
        """(the user name sent, READ / PUSH / None) for an Authorization header."""
        if not authorization or not authorization.startswith("Basic "):
            return None, None
        try:
            user, _, password = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        token = password or user
        if secrets.compare_digest(token, self.push_token):
            return user, PUSH
        if secrets.compare_digest(token, self.read_token):
            return user, READ
        return user, None


def _handler(server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class GitHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            pass

        def _record(self, user: str | None, status: int) -> None:
            server.requests.append((self.command, self.path, user, status))

        def _refuse(self, status: int, user: str | None, message: str) -> None:
            body = f"{message}\n".encode()
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self._record(user, status)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            target = urlsplit(self.path)
            body = self._body() if self.command == "POST" else b""
            user, access = server.access(self.headers.get("Authorization"))
            if access is None:
                self._refuse(401, user, "authentication required")
                return
            pushing = target.path.endswith("/git-receive-pack") or "service=git-receive-pack" in target.query
            if pushing and access != PUSH:
                self._refuse(403, user, "this credential may not push")
                return
            environment = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": target.path, "QUERY_STRING": target.query,
                "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": user or "git", "REMOTE_ADDR": "127.0.0.1",
                "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(server.root),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            result = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=environment,
                                    check=False)
            separator = b"\r\n\r\n" if b"\r\n\r\n" in result.stdout else b"\n\n"
            head, _, payload = result.stdout.partition(separator)
            status, headers = 200, []
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            if result.returncode != 0 and not head:
                status, headers, payload = 500, [("Content-Type", "text/plain")], result.stderr
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self._record(user, status)

        do_GET = do_POST = _serve

    return GitHandler


@pytest.fixture(scope="session")
def git_http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHttpServer]:
    """A started git HTTP server for the whole session (see the module docstring)."""
    with GitHttpServer(tmp_path_factory.mktemp("git-http")) as server:
        yield server
