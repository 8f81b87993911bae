"""What the tests share beside their fixtures (tests/conftest.py keeps pytest's hooks and the
fixtures): the real `labkit` command in a child process, workspaces, easy data, archives as an
attacker writes them, and a real HTTP server for downloads."""
import contextlib
import os
import subprocess
import sys

TINY = {"image_size": "32", "batch_size": "8"}   # a training job's hyper-parameters at the tests' size


def quiet(*_):
    """A ``log`` that prints nothing."""


@contextlib.contextmanager
def labkit_home(home):
    """``LABKIT_HOME`` set to ``home`` while a fixture wider than a test (which monkeypatch cannot
    serve) makes its workspace."""
    old = os.environ["LABKIT_HOME"]
    os.environ["LABKIT_HOME"] = str(home)
    try:
        yield home
    finally:
        os.environ["LABKIT_HOME"] = old


def val_images(home, dataset, n=6):
    """The bytes of the first ``n`` validation images of ``dataset``@V001 in workspace ``home``."""
    import json

    version = home / "datasets" / dataset / "versions" / "V001"
    rows = [json.loads(line) for line in (version / "val.jsonl").read_text().splitlines()][:n]
    return [(version / r["source"]).read_bytes() for r in rows]


def labkit_cli(*args, env=None, check=True):
    """Run the real `labkit` command in a child process; return the CompletedProcess."""
    proc = subprocess.run([sys.executable, "-m", "labkit.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"labkit {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


# Chinese class names, "category/name" as in seed 004's 美食/凉皮: the shared models carry them
# through import, training, conversion, the registry and the service.
COLOURS = {"颜色/红": (200, 40, 40), "颜色/绿": (40, 170, 60), "颜色/蓝": (40, 60, 200), "颜色/黄": (220, 210, 50),
           "颜色/紫": (150, 50, 190)}


def colour_manifest(folder, per_class=40, size=32, seed=0):
    """A ModelArts manifest (``folder/colours.manifest``, images beside it) of classes that differ
    by colour (with pixel noise and brightness jitter): easy data, on which a briefly trained
    ResNet-50 becomes confident. Its conversions then agree with it by construction, on any CPU,
    and pass the parity gate with evidence."""
    import json

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    lines = []
    for k, (name, rgb) in enumerate(COLOURS.items()):
        for i in range(per_class):
            pixels = np.asarray(rgb) * rng.uniform(0.8, 1.2) + rng.normal(0, 12, (size, size, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / "images" / f"{k}_{i:03d}.png")
            lines.append(json.dumps({"source": f"images/{k}_{i:03d}.png",
                                     "annotation": [{"name": name, "type": "modelarts/image_classification"}]},
                                    ensure_ascii=False))
    (folder / "colours.manifest").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "colours.manifest"


def members(path) -> dict:
    """Every plain file of a .tar.gz, name -> bytes, in order."""
    import tarfile

    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}


def write_archive(path, files, manifest: dict | None = None, links=(), specials=()):
    """A .tar.gz of ``files`` (name -> bytes, or (name, bytes) pairs where a name may come twice)
    after ``manifest.json``, plus symlink members ((name, target) pairs) and other members
    ((name, tarfile type) pairs: a hard link names the first file)."""
    import io
    import json
    import tarfile

    pairs = list(files.items()) if isinstance(files, dict) else list(files)
    with tarfile.open(path, "w:gz") as tar:
        first = [("manifest.json", json.dumps(manifest, ensure_ascii=False).encode())] if manifest else []
        for name, payload in first + pairs:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        for name, target in [*links, *specials]:
            info = tarfile.TarInfo(name)
            if (name, target) in links:
                info.type, info.linkname = tarfile.SYMTYPE, target
            else:
                info.type, info.linkname = target, pairs[0][0] if target == tarfile.LNKTYPE else ""
            tar.addfile(info)
    return path


def resign(manifest: dict, files: dict) -> dict:
    """The manifest with every file's size and sha256 made to match ``files`` again, as an attacker
    who rewrites a pack would: only what is inside the records can give a tampered pack away."""
    import hashlib

    for i, part in enumerate(manifest.get("parts", [])):
        prefix = f"parts/{i}/"
        part["files"] = {name[len(prefix):]: {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
                         for name, payload in files.items() if name.startswith(prefix)}
    return manifest


def listing(root) -> dict:
    """Every file under ``root`` (but locks) with its sha256: a workspace before and after."""
    import hashlib
    from pathlib import Path

    root = Path(root)
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "link"
            for p in sorted(root.rglob("*")) if (p.is_file() or p.is_symlink()) and p.name != ".lock"}


class FileServer:
    """A real HTTP server on 127.0.0.1 (a thread of the test) publishing ``files`` (name -> bytes)
    under ``/NAME``, as a download site or a room's mirror does: it honours ``Range`` (unless
    ``ranges`` is off, like ``python -m http.server``), can drop the connection after
    ``drop_after`` bytes of a response, and logs each request's path and Range header."""

    def __init__(self):
        import http.server
        import threading

        self.files, self.requests, self.ranges, self.drop_after = {}, [], True, None
        self.answers = []  # statuses to answer first, one per request (503: busy; 206: a range not asked for)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404)
                    return
                body, start = server.files[name], 0
                if server.answers:
                    status = server.answers.pop(0)
                    self.send_response(status)
                    if status == 206:
                        self.send_header("Content-Range", f"bytes 7-{len(body) - 1}/{len(body)}")
                        self.send_header("Content-Length", str(len(body) - 7))
                        self.end_headers()
                        self.wfile.write(body[7:])
                    else:
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    return
                wanted = self.headers.get("Range")
                if wanted and server.ranges:
                    start = int(wanted.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if server.drop_after is not None:  # once: the connection breaks mid-file, as Wi-Fi does
                    cut, server.drop_after = server.drop_after, None
                    self.wfile.write(body[start:start + cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def remote_for(server: FileServer, name: str, payload: bytes, **kw):
    """A ``downloads.Remote`` of ``payload`` published by ``server`` as ``name``."""
    import hashlib

    from labkit.downloads import Remote

    server.files[name] = payload
    return Remote(url=f"{server.url}/{name}", sha256=kw.pop("sha256", hashlib.sha256(payload).hexdigest()),
                  size=kw.pop("size", len(payload)), licence=kw.pop("licence", "test"), source="the test's server")
