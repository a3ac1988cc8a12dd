"""download=True end to end against a loopback HTTP server: mirrors, checksums, atomic
writes, interrupted transfers, and safe unpacking of archives."""
import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading

import numpy as np
import pytest

import tinygrad_cnn.data as D
from tinygrad_cnn.data import download as dl

from test_data_formats import make_cifar, make_mnist


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(dl, "SYSTEM_DATA_DIR", tmp_path / "system")
    return tmp_path


class Server:
    """Serves `files` (path -> bytes). Paths under /cut/ announce the full length but
    send only half and close the connection; /missing/ answers 404."""

    def __init__(self):
        self.files = {}
        self.requests = []
        files, requests = self.files, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                body = files.get(self.path.replace("/cut/", "/", 1))
                if body is None or self.path.startswith("/missing/"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path.startswith("/cut/"):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def all_files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def md5(data):
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def mnist_served(server, tmp_path, monkeypatch):
    """Tiny MNIST gz files on the server; MNIST's mirrors/resources point at them."""
    arrays = make_mnist(tmp_path / "source")
    resources = []
    for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]:
        body = (tmp_path / "source" / name).read_bytes()
        server.files[f"/mnist/{name}"] = body
        resources.append((name, md5(body)))
    monkeypatch.setattr(D.MNIST, "mirrors", [server.url + "/mnist/"])
    monkeypatch.setattr(D.MNIST, "resources", resources)
    return arrays


def test_mnist_download_into_cache_then_reuse(isolated, server, mnist_served):
    ds = D.MNIST(train=True, download=True)
    cache = isolated / "xdg" / "tinygrad_cnn"
    assert ds.folder == cache / "mnist"
    np.testing.assert_array_equal(ds.data, mnist_served["train"][0])
    assert all_files(cache) == sorted(f"mnist/{n}" for n, _ in D.MNIST.resources)
    count = len(server.requests)
    assert count == 4
    # found in the cache now: no more requests, with or without download=True
    np.testing.assert_array_equal(D.MNIST(train=False).targets, mnist_served["test"][1])
    D.MNIST(train=False, download=True)
    assert len(server.requests) == count


def test_download_goes_to_root_when_given(isolated, server, mnist_served):
    ds = D.MNIST(root=isolated / "mine", train=False, download=True)
    assert ds.folder == isolated / "mine" / "mnist"
    assert not (isolated / "xdg").exists()


def test_download_only_fetches_what_is_missing_and_replaces_bad_files(isolated, server, mnist_served):
    folder = isolated / "xdg" / "tinygrad_cnn" / "mnist"
    D.MNIST(download=True)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"garbage")
    server.requests.clear()
    with pytest.raises(D.DatasetFormatError, match="t10k-images"):  # a complete set, one file is garbage
        D.MNIST(train=False)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    D.MNIST(train=False, download=True)
    assert sorted(server.requests) == ["/mnist/t10k-images-idx3-ubyte.gz", "/mnist/t10k-labels-idx1-ubyte.gz"]


def test_falls_back_to_the_next_mirror(isolated, server, mnist_served, monkeypatch):
    monkeypatch.setattr(D.MNIST, "mirrors", [server.url + "/missing/", server.url + "/mnist/"])
    D.MNIST(download=True)
    assert server.requests[0].startswith("/missing/") and server.requests[1].startswith("/mnist/")


def test_checksum_mismatch_is_clear_and_leaves_nothing(isolated, server, mnist_served, monkeypatch):
    bad = [(name, "0" * 32) for name, _ in D.MNIST.resources]
    monkeypatch.setattr(D.MNIST, "resources", bad)
    with pytest.raises(D.ChecksumError) as info:
        D.MNIST(download=True)
    msg = str(info.value)
    assert "checksum mismatch" in msg and "0" * 32 in msg and "train-images-idx3-ubyte.gz" in msg
    assert "TINYGRAD_CNN_DATA" in msg
    assert all_files(isolated / "xdg") == []
    assert not (isolated / "xdg").exists()  # the folders made for the download are gone too


def test_interrupted_download_leaves_no_partial_file(isolated, server, mnist_served, monkeypatch):
    monkeypatch.setattr(D.MNIST, "mirrors", [server.url + "/cut/mnist/"])
    with pytest.raises(D.DownloadError, match="interrupted: received"):
        D.MNIST(download=True)
    assert all_files(isolated / "xdg") == []
    # same without a checksum to catch it: the length check alone refuses the file
    target = isolated / "plain" / "file.gz"
    name, _ = D.MNIST.resources[0]
    with pytest.raises(D.DownloadError, match="interrupted"):
        D.download_url(f"{server.url}/cut/mnist/{name}", target, md5=None, progress=False)
    assert all_files(isolated / "plain") == []


def test_ctrl_c_during_download_leaves_no_partial_file(isolated, server, mnist_served, monkeypatch):
    class Bar:
        def update(self, n):
            raise KeyboardInterrupt

        def close(self):
            pass

    monkeypatch.setattr(dl, "_progress_bar", lambda total, desc, enabled: Bar())
    with pytest.raises(KeyboardInterrupt):
        D.MNIST(download=True)
    assert all_files(isolated / "xdg") == []


def test_network_failure_says_where_files_were_looked_for(isolated, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(D.FashionMNIST, "mirrors", [f"http://127.0.0.1:{port}/"])
    with pytest.raises(D.DownloadError) as info:
        D.FashionMNIST(download=True)
    msg = str(info.value)
    for needle in ["download failed", f"127.0.0.1:{port}", "Also looked for existing files in",
                   str(isolated / "xdg" / "tinygrad_cnn" / "fashion-mnist"), str(isolated / "system" / "fashion-mnist"),
                   "--data-dir", "$TINYGRAD_CNN_DATA", "apt install dataset-fashion-mnist"]:
        assert needle in msg, needle
    assert all_files(isolated / "xdg") == []


def test_download_url_with_progress_bar(isolated, server, capsys):
    body = bytes(range(256)) * 1000
    server.files["/blob.bin"] = body
    path = D.download_url(server.url + "/blob.bin", isolated / "d" / "blob.bin", md5=md5(body), progress=True)
    assert path.read_bytes() == body
    assert D.check_integrity(path, md5(body)) and not D.check_integrity(path, "1" * 32)


def _tar(members):
    """A .tar.gz from (name, bytes or None for a folder, kind) entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, data
                tar.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
    return buf.getvalue()


def test_cifar_download_unpacks_the_binary_archive(isolated, server, monkeypatch):
    arrays = make_cifar(isolated / "source", layouts=("bin",))
    src = isolated / "source" / "cifar-10-batches-bin"
    archive = _tar([("cifar-10-batches-bin", None, "dir")] +
                   [(f"cifar-10-batches-bin/{n}", (src / n).read_bytes(), "file") for n in sorted(os.listdir(src))])
    server.files["/kriz/cifar-10-binary.tar.gz"] = archive
    monkeypatch.setattr(D.CIFAR10, "mirrors", [server.url + "/kriz/"])
    monkeypatch.setattr(D.CIFAR10, "resources", [("cifar-10-binary.tar.gz", md5(archive))])
    ds = D.CIFAR10(train=False, download=True)
    np.testing.assert_array_equal(ds.data, arrays["test"][0])
    cache = isolated / "xdg" / "tinygrad_cnn"
    assert all_files(cache) == sorted(f"cifar-10-batches-bin/{n}" for n in os.listdir(src))  # archive removed
    assert len(D.CIFAR10(train=True)) == 20


@pytest.mark.parametrize("members, phrase", [
    ([("../evil.txt", b"x", "file")], "outside the destination"),
    ([("ok/../../evil.txt", b"x", "file")], "outside the destination"),
    ([("/tmp/evil-absolute.txt", b"x", "file")], "outside the destination"),
    ([("cifar-10-batches-bin/link", "../../evil.txt", "symlink")], "link"),
    ([("cifar-10-batches-bin/a", b"x", "file"), ("cifar-10-batches-bin/b", "cifar-10-batches-bin/a", "hardlink")],
     "link"),
    ([("cifar-10-batches-bin/fifo", None, "fifo")], "special file"),
])
def test_unsafe_archives_are_refused(isolated, members, phrase):
    archive = isolated / "a.tar.gz"
    archive.write_bytes(_tar(members))
    dest = isolated / "dest" / "inner"
    with pytest.raises(D.UnsafeArchiveError, match=phrase):
        D.extract_tar(archive, dest)
    assert all_files(isolated / "dest") == []
    assert not (isolated / "evil.txt").exists() and not (isolated / "dest" / "evil.txt").exists()
    assert not os.path.exists("/tmp/evil-absolute.txt")


def test_unsafe_cifar_archive_through_download_is_refused_and_removed(isolated, server, monkeypatch):
    archive = _tar([("../escaped.bin", b"x" * 3073, "file")])
    server.files["/kriz/cifar-10-binary.tar.gz"] = archive
    monkeypatch.setattr(D.CIFAR10, "mirrors", [server.url + "/kriz/"])
    monkeypatch.setattr(D.CIFAR10, "resources", [("cifar-10-binary.tar.gz", md5(archive))])
    with pytest.raises(D.UnsafeArchiveError):
        D.CIFAR10(root=isolated / "r", download=True)
    assert all_files(isolated / "r") == [] and not (isolated / "escaped.bin").exists()


def test_extract_tar_nested_folders(isolated):
    archive = isolated / "a.tar"
    archive.write_bytes(_tar([("top", None, "dir"), ("top/sub/x.txt", b"hello", "file"), ("y.txt", b"", "file")]))
    written = D.extract_tar(archive, isolated / "out")
    assert sorted(os.path.relpath(p, isolated / "out") for p in written) == ["top/sub/x.txt", "y.txt"]
    assert (isolated / "out" / "top" / "sub" / "x.txt").read_bytes() == b"hello"
    assert all_files(isolated / "out") == ["top/sub/x.txt", "y.txt"]  # no staging folder left behind
