"""Where datasets live, and how they get there: search path, download, checksum, unpack.

Search order for a dataset's files (first complete set wins):

1. the ``root`` argument (``--data-dir`` in the demos): ``root/<folder>/`` and ``root`` itself;
2. ``$TINYGRAD_CNN_DATA`` (one folder, or several joined by ``os.pathsep``): ``<dir>/<folder>/``;
3. the user cache: ``$XDG_CACHE_HOME/tinygrad_cnn`` or ``~/.cache/tinygrad_cnn``: ``<cache>/<folder>/``;
4. ``/usr/share/datasets/<folder>/`` (Debian's ``dataset-fashion-mnist`` installs there).

``download=True`` fetches only what is missing, into ``root`` if given, else the cache.
Downloads stream into a hidden temporary file in the destination folder, are checked
against the published MD5, and only then renamed into place (``os.replace``), so a
failed, interrupted or corrupted download never leaves a file that looks complete.
Archives are unpacked only if every member is a plain file or folder inside the
destination (no absolute paths, no ``..``, no links or devices).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Iterable, List, Optional, Sequence, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

ENV_VAR = "TINYGRAD_CNN_DATA"
SYSTEM_DATA_DIR = Path("/usr/share/datasets")
USER_AGENT = "tinygrad_cnn-dataset-downloader"


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are in none of the searched folders (and download was off)."""


class DownloadError(RuntimeError):
    """A download failed (network error, interrupted transfer, bad checksum, unsafe archive)."""


class ChecksumError(DownloadError):
    """A downloaded file's MD5 differs from the published one."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the destination, or is a link/device."""


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tinygrad_cnn`` or ``~/.cache/tinygrad_cnn`` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinygrad_cnn"


def env_dirs() -> List[Path]:
    """The folders listed in ``$TINYGRAD_CNN_DATA`` (empty if unset)."""
    value = os.environ.get(ENV_VAR, "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p]


def search_dirs(root: Optional[PathLike], folder_names: Sequence[str]) -> List[Tuple[Path, str]]:
    """Every folder to look in, in order, each with a note saying where it comes from."""
    dirs: List[Tuple[Path, str]] = []
    if root is not None:
        r = Path(root).expanduser()
        dirs += [(r / name, "root argument / --data-dir") for name in folder_names]
        dirs.append((r, "root argument / --data-dir"))
    for d in env_dirs():
        dirs += [(d / name, f"${ENV_VAR}") for name in folder_names]
    dirs += [(cache_dir() / name, "user cache") for name in folder_names]
    dirs += [(SYSTEM_DATA_DIR / name, "system datasets") for name in folder_names]
    return dirs


def download_dir(root: Optional[PathLike]) -> Path:
    """Where ``download=True`` writes: ``root`` if given, else the user cache."""
    return Path(root).expanduser() if root is not None else cache_dir()


def md5sum(path: PathLike, chunk_size: int = 1 << 20) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def check_integrity(path: PathLike, md5: Optional[str] = None) -> bool:
    """True if ``path`` exists and (when ``md5`` is given) has that MD5."""
    if not os.path.isfile(path):
        return False
    return md5 is None or md5sum(path) == md5.lower()


class _PlainProgress:
    """A minimal progress bar for when tqdm is not installed."""

    def __init__(self, total: Optional[int], desc: str) -> None:
        self.total, self.desc, self.done, self.shown = total, desc, 0, -1

    def update(self, n: int) -> None:
        self.done += n
        if self.total:
            step = int(10 * self.done / self.total)
            if step != self.shown:
                self.shown = step
                print(f"\r{self.desc}: {self.done / 1e6:.1f} / {self.total / 1e6:.1f} MB", end="", file=sys.stderr)

    def close(self) -> None:
        print(file=sys.stderr)


def _progress_bar(total: Optional[int], desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)
    except ImportError:
        return _PlainProgress(total, desc)


def download_url(url: str, path: PathLike, md5: Optional[str] = None, progress: bool = True,
                 timeout: float = 60.0) -> Path:
    """Download ``url`` to ``path`` atomically, verifying ``md5`` if given.

    The bytes go to a hidden ``.part`` file next to ``path`` and are renamed to ``path``
    only once complete and verified; on any failure (including Ctrl-C) the partial
    file is deleted. Raises :class:`DownloadError` / :class:`ChecksumError`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    bar = None
    try:
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = _progress_bar(total, path.name, progress)
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if total is not None and received != total:
            raise DownloadError(f"download of {url} was interrupted: received {received} of {total} bytes")
        if md5 is not None and digest.hexdigest() != md5.lower():
            raise ChecksumError(f"checksum mismatch for {url}: MD5 {digest.hexdigest()}, expected {md5.lower()} "
                                "(corrupted transfer or a changed file); nothing was kept")
        os.replace(tmp, path)
        return path
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        if isinstance(e, urllib.error.HTTPError):
            e.close()  # an HTTPError is also the open response: release its socket now
        raise DownloadError(f"could not download {url}: {e}") from e
    finally:
        if bar is not None:
            bar.close()
        if os.path.exists(tmp):
            os.unlink(tmp)


def download_resources(resources: Iterable[Tuple[str, Optional[str]]], mirrors: Sequence[str], folder: PathLike,
                       progress: bool = True) -> List[Path]:
    """Fetch every ``(filename, md5)`` into ``folder``, trying each base URL in ``mirrors``.

    Files already present with the right MD5 are not fetched again. If every mirror
    fails for a file, raises :class:`DownloadError` (or :class:`ChecksumError` when a
    checksum was the reason) listing each attempt; folders this call created are
    removed again if they are left empty.
    """
    folder = Path(folder)
    created = [d for d in [folder, *folder.parents] if not d.exists()]  # to tidy up after a failure
    paths = []
    try:
        for filename, md5 in resources:
            target = folder / filename
            if check_integrity(target, md5):
                paths.append(target)
                continue
            failures: List[DownloadError] = []
            for base in mirrors:
                url = base.rstrip("/") + "/" + filename
                try:
                    paths.append(download_url(url, target, md5, progress=progress))
                    break
                except DownloadError as e:
                    failures.append(e)
            else:
                kind = ChecksumError if any(isinstance(e, ChecksumError) for e in failures) else DownloadError
                detail = "\n".join(f"  - {e}" for e in failures) or "  - no mirrors configured"
                raise kind(f"could not download {filename}:\n{detail}")
        return paths
    except BaseException:
        for d in created:  # deepest first; stops at the first folder that is not empty
            try:
                d.rmdir()
            except OSError:
                break
        raise


def check_tar_members(archive: PathLike, members: Sequence[tarfile.TarInfo]) -> None:
    """Refuse absolute paths, ``..`` components, links, devices and other special members."""
    for m in members:
        name = m.name
        parts = PurePosixPath(name).parts
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts or "\\" in name:
            raise UnsafeArchiveError(f"{archive}: refusing to unpack member {name!r}: it would be written "
                                     "outside the destination folder")
        if not (m.isfile() or m.isdir()):
            kind = "link" if (m.issym() or m.islnk()) else "special file"
            raise UnsafeArchiveError(f"{archive}: refusing to unpack member {name!r}: it is a {kind}; "
                                     "only regular files and folders are allowed")


def extract_tar(archive: PathLike, destination: PathLike) -> List[Path]:
    """Safely unpack a (gzipped) tar into ``destination``; returns the files written.

    All members are checked first (:func:`check_tar_members`); everything is unpacked
    into a temporary folder inside ``destination`` and then moved into place file by
    file, so a failure never leaves half-written files under their final names.
    """
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            check_tar_members(archive, members)
            staging = Path(tempfile.mkdtemp(dir=destination, prefix=".extract-"))
            try:
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: a second line of defence
                    tar.extractall(staging, members=members, filter="data")
                else:  # pragma: no cover
                    tar.extractall(staging, members=members)
                written = []
                for m in members:
                    if m.isfile():
                        final = destination / m.name
                        final.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(staging / m.name, final)
                        written.append(final)
                return written
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except tarfile.TarError as e:
        raise DownloadError(f"{archive}: not a valid tar archive ({e})") from e
