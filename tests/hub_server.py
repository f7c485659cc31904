"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1, for tests only.

It serves model repositories from a dict ``{repo_id: {revision: {filename: bytes}}}``
through the routes ``huggingface_hub`` uses to download single files
(``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}``) and to publish
small ones (create repo, preupload in "regular" mode, NDJSON commit, tag),
and records every request so tests can check what was fetched and when.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


class FakeHub:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is the endpoint for ``HF_ENDPOINT``."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    def add_file(self, repo_id: str, revision: str, filename: str, content: bytes) -> None:
        self.repos.setdefault(repo_id, {}).setdefault(revision, {})[filename] = content

    def commit_sha(self, repo_id: str, revision: str) -> str:
        files = self.repos.get(repo_id, {}).get(revision, {})
        digest = hashlib.sha1(repo_id.encode())
        for name in sorted(files):
            digest.update(name.encode() + files[name])
        return digest.hexdigest()

    def commit(self, repo_id: str, revision: str, lines: list[dict]) -> str:
        """Apply an NDJSON commit payload; the new files are reachable by branch and by commit id."""
        files = dict(self.repos.get(repo_id, {}).get(revision, {}))
        for line in lines:
            if line["key"] == "file":
                files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
        self.repos.setdefault(repo_id, {})[revision] = files
        sha = self.commit_sha(repo_id, revision)
        self.repos[repo_id][sha] = files
        return sha

    def post(self, path: str, body: bytes) -> dict:
        """The JSON answer to a POST on the publishing routes."""
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "validate-yaml"]:
            return {"warnings": []}
        if parts[:3] == ["api", "repos", "create"]:
            repo_id = f"{json.loads(body).get('organization') or 'user'}/{json.loads(body)['name']}"
            self.repos.setdefault(repo_id, {})
            return {"url": f"{self.url}/{repo_id}"}
        repo_id, action, revision = "/".join(parts[2:4]), parts[4], "/".join(parts[5:])
        if action == "preupload":
            files = json.loads(body)["files"]
            return {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
        if action == "commit":
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            sha = self.commit(repo_id, revision, lines)
            return {"commitUrl": f"{self.url}/{repo_id}/commit/{sha}", "commitOid": sha}
        if action == "tag":
            self.repos[repo_id][json.loads(body)["tag"]] = self.repos[repo_id][revision]
            return {}
        raise KeyError(path)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _serve(self, send_body: bool) -> None:
                hub.requests.append((self.command, self.path))
                parts = unquote(self.path.split("?")[0]).strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    self.send_error(404)
                    return
                repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                content = hub.repos.get(repo_id, {}).get(revision, {}).get(filename)
                if content is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound" if repo_id in hub.repos else "RepositoryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(content)))
                self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
                self.send_header("X-Repo-Commit", hub.commit_sha(repo_id, revision))
                self.end_headers()
                if send_body:
                    self.wfile.write(content)

            def do_HEAD(self) -> None:
                self._serve(send_body=False)

            def do_GET(self) -> None:
                self._serve(send_body=True)

            def do_POST(self) -> None:
                hub.requests.append((self.command, self.path))
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    answer = json.dumps(hub.post(unquote(self.path.split("?")[0]), body)).encode()
                except (KeyError, ValueError, IndexError):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
