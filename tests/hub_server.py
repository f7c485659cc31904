"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1, for tests only.

It serves model and dataset repositories from a dict ``{key: {revision: {filename: bytes}}}``
(``key`` is ``owner/name`` for a model, ``datasets/owner/name`` for a dataset: see :func:`repo_key`)
through the routes ``huggingface_hub`` uses to download single files
(``HEAD``/``GET /[datasets/]{repo_id}/resolve/{revision}/{filename}``), to ask about a
repository or resolve a revision (``GET /api/{models|datasets}/{repo_id}[/revision/{revision}]``)
and to publish small files (create repo, preupload in "regular" mode, NDJSON commit, tag).
Missing repositories, revisions and files are answered as the Hub does (404 with ``X-Error-Code``
``RepoNotFound``, ``RevisionNotFound`` or ``EntryNotFound``). Every request is recorded so tests can
check what was fetched and when.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


def repo_key(repo_id: str, repo_type: str | None = "model") -> str:
    """The key of a repository in :attr:`FakeHub.repos`: ``owner/name`` for models, ``datasets/owner/name``."""
    return repo_id if repo_type in (None, "model", "models") else f"datasets/{repo_id}"


class FakeHub:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is the endpoint for ``HF_ENDPOINT``."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    def add_file(self, repo_id: str, revision: str, filename: str, content: bytes, repo_type: str = "model") -> None:
        self.repos.setdefault(repo_key(repo_id, repo_type), {}).setdefault(revision, {})[filename] = content

    def missing(self, key: str, revision: str, filename: str | None = None) -> str:
        """The Hub's ``X-Error-Code`` for what is not there ('' when it is)."""
        if key not in self.repos:
            return "RepoNotFound"
        if revision not in self.repos[key]:
            return "RevisionNotFound"
        return "EntryNotFound" if filename is not None and filename not in self.repos[key][revision] else ""

    def info(self, key: str, revision: str) -> dict:
        """What ``GET /api/{models|datasets}/{repo_id}[/revision/{revision}]`` answers."""
        files = self.repos[key][revision]
        return {"id": key.removeprefix("datasets/"), "sha": self.commit_sha(key, revision), "private": False,
                "siblings": [{"rfilename": name} for name in sorted(files)]}

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
            request = json.loads(body)
            repo_id = f"{request.get('organization') or 'user'}/{request['name']}"
            self.repos.setdefault(repo_key(repo_id, request.get("type")), {})
            return {"url": f"{self.url}/{repo_id}"}
        repo_id, action, revision = repo_key("/".join(parts[2:4]), parts[1]), parts[4], "/".join(parts[5:])
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

            def _refuse(self, error_code: str) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", error_code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _answer_json(self, answer: dict) -> None:
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _info(self, parts: list[str]) -> None:
                """``api/{models|datasets}/owner/name[/revision/REV]``: repository info at a revision."""
                key, revision = repo_key("/".join(parts[2:4]), parts[1]), "/".join(parts[5:]) or "main"
                error = hub.missing(key, revision)
                self._refuse(error) if error else self._answer_json(hub.info(key, revision))

            def _serve(self, send_body: bool) -> None:
                hub.requests.append((self.command, self.path))
                parts = unquote(self.path.split("?")[0]).strip("/").split("/")
                if parts[0] == "api" and len(parts) >= 4 and parts[1] in ("models", "datasets"):
                    self._info(parts)
                    return
                repo_type = "dataset" if parts[0] == "datasets" else "model"
                parts = parts[1:] if parts[0] == "datasets" else parts
                if len(parts) < 5 or parts[2] != "resolve":
                    self.send_error(404)
                    return
                key, revision, filename = repo_key("/".join(parts[:2]), repo_type), parts[3], "/".join(parts[4:])
                error = hub.missing(key, revision, filename)
                if error:
                    self._refuse(error)
                    return
                content = hub.repos[key][revision][filename]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(content)))
                self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
                self.send_header("X-Repo-Commit", hub.commit_sha(key, revision))
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
                    answer = hub.post(unquote(self.path.split("?")[0]), body)
                except (KeyError, ValueError, IndexError):
                    self.send_error(404)
                    return
                self._answer_json(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
