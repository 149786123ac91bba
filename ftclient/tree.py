"""Whole folders and several files at once: ``put -r``, ``get -r``, multi-file put and get.

Plans which files to send (skipping those whose size and SHA-256 already match
on the other side, by the digest caches of both sides), then moves small files
pipelined over the one connection (pipeline.py) and large ones one by one with
the resumable put and get. Empty folders are created on the other side; files
and folders keep their mtimes. A skipped file whose mtime differs on the other
side gets the source's mtime; folders get theirs after all files are written
(writing into a folder changes its mtime), deepest first.

Local symlinks are never followed: they are reported as skipped, as are names
the protocol cannot carry and special files. Every path a server names for
``get -r`` has passed the path rules already (``Client.walk``), and the folder it
lands in is checked to lie inside the destination before anything is written,
so a hostile server (or a symlink planted in the destination) cannot direct a
write elsewhere.

A dropped connection is retried by the client as for one file (``Client.retries``),
the pipelined files included; ``on_retry`` hears of each retry. Once the client
gives up on the link, the files not yet tried are failed with that cause and the
transfer stops there (each would only wait out the same retries): the report
still holds every file done before.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from common.io.hashcache import HashCache
from common.protocol.errors import BadPath, FtError, NotADirectory, NotFound
from common.protocol.messages import MTIME_TOLERANCE, WalkEntry, mtime_ns
from common.protocol.names import check_component, is_within, split_path
from ftclient.client import Client, Progress, local_error, normalize_remote
from ftclient.digests import local_digest, remember
from ftclient.localfiles import partial_path_for, remote_basename
from ftclient.pipeline import PIPELINE_MAX_SIZE, PipedFile, PipedResult
from ftclient.retry import RetryCallback, reason_to_retry


@dataclass(frozen=True)
class TreeProgress:
    """Where a multi-file transfer stands: files and bytes, and the file moving now."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    current: str


TreeCallback = Callable[[TreeProgress], None]


@dataclass
class TreeReport:
    """What a multi-file transfer did. Names are remote names (put) or local paths (get)."""

    sent: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(name, reason): symlinks, special files, names the protocol cannot carry."""
    failed: list[tuple[str, FtError]] = field(default_factory=list)
    bytes_moved: int = 0
    folders_made: int = 0


@dataclass(frozen=True)
class _Job:
    local: str
    remote: str
    size: int
    st: os.stat_result | None = None


class _Meter:
    """Turns files answered and the bytes of resumable transfers into TreeProgress calls.

    A pipelined file counts, bytes and all, only once it is answered, so one sent
    again after a cut is never counted twice; a resumable transfer's bytes count
    as they move, and a retry that resumes lower takes back the difference.
    """

    def __init__(self, jobs: list[_Job], callback: TreeCallback | None) -> None:
        self.callback = callback
        self.files_total = len(jobs)
        self.bytes_total = sum(job.size for job in jobs)
        self.files_done = 0
        self.bytes_done = 0
        self.current = ""

    def answered(self, name: str, size: int) -> None:
        """A pipelined file is answered (a BytesCallback for put_many and get_many)."""
        self.current = name
        self.bytes_done += size
        self.file_done()

    def one_file(self, name: str) -> Callable[[Progress], None]:
        """A Progress callback for one resumable transfer, feeding this meter."""
        seen = [0]

        def update(progress: Progress) -> None:
            self.current = name
            self.bytes_done += progress.done - seen[0]  # a resumed prefix counts as done
            seen[0] = progress.done
            self._report()

        return update

    def file_done(self) -> None:
        self.files_done += 1
        self._report()

    def _report(self) -> None:
        if self.callback:
            self.callback(TreeProgress(self.files_done, self.files_total, self.bytes_done,
                                       self.bytes_total, self.current))


def _link_failed(error: FtError) -> bool:
    """True if ``error`` is the link failing (a cut, a timeout, a server going away), which
    the client retried as far as it was allowed: the files after it would fail alike."""
    return reason_to_retry(error, after_cut=False) is not None


def _not_tried(cause: FtError) -> FtError:
    """The error of the files left when the link failed for good (one, shared by them all)."""
    return type(cause)(f"not tried, the connection had failed: {cause.message}")


# ---------------------------------------------------------------- local side


@dataclass
class LocalTree:
    folders: list[str] = field(default_factory=list)
    """Relative "/"-joined paths, parents first."""
    files: list[tuple[str, str, os.stat_result]] = field(default_factory=list)
    """(relative path, absolute path, lstat)."""
    skipped: list[tuple[str, str]] = field(default_factory=list)


def scan_local(root: str) -> LocalTree:
    """Every folder and regular file below ``root``, never following a symlink."""
    if os.path.islink(root) or not os.path.isdir(root):
        if not os.path.lexists(root):
            raise NotFound(f"local folder {root!r} does not exist")
        raise NotADirectory(f"{root!r} is not a folder")
    tree = LocalTree()
    pending: list[tuple[str, ...]] = [()]
    while pending:
        relative = pending.pop()
        folder = os.path.join(root, *relative)
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as exc:
            tree.skipped.append(("/".join(relative), f"cannot read: {exc.strerror or exc}"))
            continue
        subfolders = []
        for entry in entries:
            path = relative + (entry.name,)
            shown = "/".join(path)
            try:
                check_component(entry.name)
            except BadPath as exc:
                tree.skipped.append((shown, exc.message))
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                tree.skipped.append((shown, exc.strerror or str(exc)))
                continue
            if stat.S_ISLNK(st.st_mode):
                tree.skipped.append((shown, "symlink, not followed"))
            elif stat.S_ISDIR(st.st_mode):
                tree.folders.append(shown)
                subfolders.append(path)
            elif stat.S_ISREG(st.st_mode):
                tree.files.append((shown, entry.path, st))
            else:
                tree.skipped.append((shown, "not a regular file"))
        pending.extend(reversed(subfolders))
    return tree


def _remote_join(folder: str, relative: str) -> str:
    return f"{folder}/{relative}" if folder else relative


# ---------------------------------------------------------------- put


def put_tree(
    client: Client, local_dir: str, remote_dir: str, *,
    cache: HashCache | None = None, progress: TreeCallback | None = None,
    on_retry: RetryCallback | None = None,
) -> TreeReport:
    """Upload the folder ``local_dir`` as ``remote_dir``, skipping files already there."""
    remote_dir = normalize_remote(remote_dir, allow_root=True)
    tree = scan_local(local_dir)
    report = TreeReport(skipped=list(tree.skipped))
    remote = _remote_index(client, remote_dir, on_retry)
    jobs: list[_Job] = []
    for relative, path, st in tree.files:
        there = remote.get(relative)
        if there is not None and there.type == "file" and there.size == st.st_size \
                and there.sha256 is not None \
                and local_digest(cache, path, st) == there.sha256:
            name = _remote_join(remote_dir, relative)
            report.unchanged.append(name)
            if _mtimes_differ(there.mtime, st.st_mtime) and not _set_remote_mtime(
                    client, name, st.st_mtime, report, on_retry):
                # The link is gone before anything moved: fail as a walk would, instead
                # of waiting out the retries again for every file left.
                raise report.failed.pop()[1]
            continue
        jobs.append(_Job(path, _remote_join(remote_dir, relative), st.st_size, st))
    # Uploads create the folders they need; only the others are made here.
    needed = _ancestors({os.path.dirname(job.remote) for job in jobs})
    made: set[str] = set()
    if remote_dir and remote_dir not in needed and not remote:
        client.mkdir(remote_dir, parents=True, on_retry=on_retry)
        report.folders_made += 1
    for relative in tree.folders:
        name = _remote_join(remote_dir, relative)
        if relative not in remote and name not in needed:
            client.mkdir(name, parents=True, on_retry=on_retry)
            report.folders_made += 1
            made.add(name)
    if _send(client, jobs, report, cache, progress, on_retry):
        return report  # the link is gone: the folders' mtimes would only wait out retries
    # Folders last, deepest first: what was written into a folder changed its mtime.
    changed = needed | {os.path.dirname(name) for name in made}
    for relative in sorted(tree.folders, key=lambda name: name.count("/"), reverse=True):
        name = _remote_join(remote_dir, relative)
        there = remote.get(relative)
        if there is not None and there.type != "dir":
            continue  # a file there: its upload failed already
        try:
            mtime = os.lstat(os.path.join(local_dir, relative)).st_mtime
        except OSError:
            continue  # gone meanwhile
        if there is None or name in changed or _mtimes_differ(there.mtime, mtime):
            if not _set_remote_mtime(client, name, mtime, report, on_retry):
                return report
    if remote_dir:  # the walk does not show the top folder itself: always set it
        try:
            _set_remote_mtime(client, remote_dir, os.lstat(local_dir).st_mtime, report,
                              on_retry)
        except OSError:
            pass  # gone meanwhile
    return report


def _mtimes_differ(one: float, other: float) -> bool:
    return abs(one - other) >= MTIME_TOLERANCE


def _set_remote_mtime(client: Client, name: str, mtime: float, report: TreeReport,
                      on_retry: RetryCallback | None) -> bool:
    """Set a remote mtime; False if the link failed for good doing it."""
    try:
        client.set_mtime(name, mtime, on_retry=on_retry)
    except FtError as exc:
        report.failed.append((name, exc))
        return not _link_failed(exc)
    return True


def put_files(
    client: Client, local_files: list[str], remote_dir: str, *,
    cache: HashCache | None = None, progress: TreeCallback | None = None,
    on_retry: RetryCallback | None = None,
) -> TreeReport:
    """Upload several local files into ``remote_dir`` (created if needed), each by its name."""
    remote_dir = normalize_remote(remote_dir, allow_root=True)
    report = TreeReport()
    jobs = []
    for path in local_files:
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            report.failed.append((path, NotFound(f"local file {path!r}: {exc.strerror}")))
            continue
        except OSError as exc:
            report.failed.append((path, local_error(exc, f"local file {path!r}")))
            continue
        if stat.S_ISDIR(st.st_mode):
            report.skipped.append((path, "a folder (use put -r)"))
            continue
        try:
            name = check_component(os.path.basename(os.path.abspath(path)))
        except BadPath as exc:
            report.skipped.append((path, exc.message))
            continue
        jobs.append(_Job(path, _remote_join(remote_dir, name), st.st_size, st))
    _send(client, jobs, report, cache, progress, on_retry)
    return report


def _ancestors(folders: set[str]) -> set[str]:
    """Every folder in ``folders`` and all their parents."""
    found: set[str] = set()
    for folder in folders:
        while folder and folder not in found:
            found.add(folder)
            folder = os.path.dirname(folder)
    return found


def _remote_index(client: Client, remote_dir: str, on_retry: RetryCallback | None
                  ) -> dict[str, WalkEntry]:
    try:
        return {entry.path: entry for entry in client.walk(remote_dir, on_retry=on_retry)}
    except NotFound:
        return {}


def _send(client: Client, jobs: list[_Job], report: TreeReport, cache: HashCache | None,
          progress: TreeCallback | None, on_retry: RetryCallback | None) -> FtError | None:
    """Small files pipelined, then large ones one by one; the error that ended the link, if
    it failed for good (the files after it are failed, not tried)."""
    meter = _Meter(jobs, progress)
    small = [job for job in jobs if job.size <= PIPELINE_MAX_SIZE]
    by_local = {job.local: job for job in jobs}
    results = client.put_many([PipedFile(job.local, job.remote) for job in small],
                              meter.answered, on_retry=on_retry)
    for result in results:
        _record(report, result.remote, result, cache, by_local[result.local])

    def put_one(job: _Job) -> PipedResult:
        done = client.put(job.local, job.remote, progress=meter.one_file(job.remote),
                          on_retry=on_retry)
        return PipedResult(job.local, job.remote, done.size, done.sha256)

    return _one_by_one([job for job in jobs if job.size > PIPELINE_MAX_SIZE],
                       _lost_link(results), report, meter, lambda job: job.remote, put_one,
                       lambda job, result: _record(report, job.remote, result, cache, job))


def _lost_link(results: list[PipedResult]) -> FtError | None:
    """The error of the first file the link's failure left unanswered, if any."""
    return next((result.error for result in results
                 if result.error is not None and _link_failed(result.error)), None)


def _one_by_one(jobs: list[_Job], lost: FtError | None, report: TreeReport, meter: _Meter,
                shown: Callable[[_Job], str], transfer: Callable[[_Job], PipedResult],
                record: Callable[[_Job, PipedResult], None]) -> FtError | None:
    """Move ``jobs`` one at a time with the resumable put or get. Once the link has failed
    for good (``lost``, or here), the rest are failed, not tried; returns that failure."""
    left: FtError | None = None
    for job in jobs:
        if lost is not None:
            left = left or _not_tried(lost)
            report.failed.append((shown(job), left))
            continue
        try:
            result = transfer(job)
        except FtError as exc:
            report.failed.append((shown(job), exc))
            lost = exc if _link_failed(exc) else None
            continue
        finally:
            meter.file_done()
        record(job, result)
    return lost


def _record(report: TreeReport, name: str, result: PipedResult, cache: HashCache | None,
            job: _Job) -> None:
    if result.error is not None or result.sha256 is None:
        report.failed.append((name, result.error or NotFound(f"{name!r} failed")))
        return
    report.sent.append(name)
    report.bytes_moved += result.size
    if job.st is not None:
        remember(cache, job.local, job.st, result.sha256)


# ---------------------------------------------------------------- get


def get_tree(
    client: Client, remote_dir: str, local_dir: str, *,
    cache: HashCache | None = None, progress: TreeCallback | None = None,
    on_retry: RetryCallback | None = None,
) -> TreeReport:
    """Download the remote folder ``remote_dir`` as ``local_dir``, skipping files held already."""
    remote_dir = normalize_remote(remote_dir, allow_root=True)
    entries = client.walk(remote_dir, on_retry=on_retry)
    os.makedirs(local_dir, exist_ok=True)
    root = os.path.realpath(local_dir)
    report = TreeReport()
    jobs: list[_Job] = []
    folders: list[tuple[str, float]] = []  # (local folder, the server's mtime)
    folder_inside: dict[str, bool] = {}  # many files share a folder: resolve each once
    for entry in entries:
        parts = split_path(entry.path)  # Client.walk checked it; cheap to be sure
        local = os.path.join(root, *parts)
        folder = os.path.dirname(local)
        if folder not in folder_inside:
            folder_inside[folder] = _inside(root, local)
        if not folder_inside[folder]:
            report.skipped.append((local, "would leave the destination folder"))
            continue
        if os.path.islink(local):
            report.skipped.append((local, "a symlink in the destination, not followed"))
            continue
        if entry.type == "dir":
            try:
                os.makedirs(local, exist_ok=True)
            except OSError as exc:
                report.failed.append((local, _local_failure(local, exc)))
                continue
            if not _inside(root, local, whole=True):
                report.skipped.append((local, "would leave the destination folder"))
            else:
                folders.append((local, entry.mtime))
            continue
        if _unchanged_locally(cache, local, entry):
            report.unchanged.append(local)
            _set_local_mtime(root, local, entry.mtime, report, cache, entry.sha256)
            continue
        jobs.append(_Job(local, _remote_join(remote_dir, entry.path), entry.size))
    lost = _fetch(client, jobs, report, cache, progress, on_retry)
    # Folders last, deepest first: writing into a folder changed its mtime.
    for local, mtime in sorted(folders, key=lambda item: item[0].count(os.sep), reverse=True):
        _set_local_mtime(root, local, mtime, report)
    if remote_dir and lost is None:
        try:
            top = client.stat(remote_dir, on_retry=on_retry)
        except FtError as exc:
            report.failed.append((root, exc))
        else:
            _set_local_mtime(root, root, top.mtime, report)
    return report


def _set_local_mtime(root: str, local: str, mtime: float, report: TreeReport,
                     cache: HashCache | None = None, sha256: str | None = None) -> None:
    """Give ``local`` (inside ``root``, never a symlink) the mtime ``mtime`` if it differs."""
    try:
        st = os.lstat(local)
        if not _mtimes_differ(st.st_mtime, mtime) or stat.S_ISLNK(st.st_mode):
            return
        if not _inside(root, local, whole=True):
            return  # swapped for a way out since it was checked: leave it alone
        os.utime(local, ns=(st.st_atime_ns, mtime_ns(mtime)), follow_symlinks=False)
        if sha256 is not None:  # the new mtime (and ctime) must not cost a re-read
            remember(cache, local, os.lstat(local), sha256)
    except OSError as exc:
        report.failed.append((local, local_error(exc, f"cannot set the mtime of {local!r}")))


def get_files(
    client: Client, remote_names: list[str], local_dir: str, *,
    cache: HashCache | None = None, progress: TreeCallback | None = None,
    on_retry: RetryCallback | None = None,
) -> TreeReport:
    """Download several remote files into the existing local folder ``local_dir``."""
    if not os.path.isdir(local_dir):
        raise NotFound(f"local folder {local_dir!r} does not exist")
    report = TreeReport()
    jobs = []
    folder = os.path.abspath(local_dir)
    for name in remote_names:
        remote = normalize_remote(name)
        jobs.append(_Job(os.path.join(folder, remote_basename(remote)), remote, 0))
    _fetch(client, jobs, report, cache, progress, on_retry)
    return report


def _inside(root: str, local: str, *, whole: bool = False) -> bool:
    """True if ``local``'s folder (or, ``whole``, itself) resolves inside ``root``."""
    probe = local if whole else os.path.dirname(local)
    return is_within(root, os.path.realpath(probe))


def _unchanged_locally(cache: HashCache | None, local: str, entry: WalkEntry) -> bool:
    if entry.sha256 is None:
        return False
    try:
        st = os.lstat(local)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
        return False
    return local_digest(cache, local, st) == entry.sha256


def _local_failure(local: str, exc: OSError) -> FtError:
    return local_error(exc, f"cannot create {local!r}")


def _fetch(client: Client, jobs: list[_Job], report: TreeReport, cache: HashCache | None,
           progress: TreeCallback | None, on_retry: RetryCallback | None) -> FtError | None:
    """Small or unknown-size files pipelined; large ones, and any with a partial to resume,
    through the resumable get. Returns as ``_send`` does."""
    meter = _Meter(jobs, progress)
    resumable = [job.size > PIPELINE_MAX_SIZE or os.path.exists(partial_path_for(job.local))
                 for job in jobs]
    one_by_one = [job for job, alone in zip(jobs, resumable, strict=True) if alone]
    piped = [job for job, alone in zip(jobs, resumable, strict=True) if not alone]
    by_local = {job.local: job for job in jobs}
    results = client.get_many([PipedFile(job.local, job.remote) for job in piped],
                              meter.answered, on_retry=on_retry)
    for result in results:
        _record_download(report, result, cache, by_local[result.local])

    def get_one(job: _Job) -> PipedResult:
        done = client.get(job.remote, job.local, progress=meter.one_file(job.remote),
                          on_retry=on_retry)
        return PipedResult(job.local, job.remote, done.size, done.sha256)

    return _one_by_one(one_by_one, _lost_link(results), report, meter, lambda job: job.local,
                       get_one, lambda job, result: _record_download(report, result, cache, job))


def _record_download(report: TreeReport, result: PipedResult, cache: HashCache | None,
                     job: _Job) -> None:
    if result.error is not None or result.sha256 is None:
        report.failed.append((job.local, result.error or NotFound(f"{job.remote!r} failed")))
        return
    report.sent.append(job.local)
    report.bytes_moved += result.size
    try:
        remember(cache, job.local, os.stat(job.local), result.sha256)
    except OSError:
        pass
