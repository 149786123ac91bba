"""``put -r`` and many-file put: plan what to send, skip what the server already has.

Files whose size and SHA-256 already match on the server (by both sides' digest
caches) are skipped; a skipped file whose mtime differs gets the source's mtime.
Empty folders are created on the server; folders get their mtimes after all
files are written, deepest first. Local symlinks are never followed: they are
reported as skipped, as are names the protocol cannot carry and special files.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from common.protocol.errors import BadPath, FtError, NotADirectory, NotFound
from common.protocol.names import check_component
from common.protocol.replies import WalkEntry
from ftclient.client import Client
from ftclient.digests import local_digest, remember
from ftclient.localfiles import local_error
from ftclient.names import normalize_remote
from ftclient.pipeline import PIPELINE_MAX_SIZE, PipedFile, PipedResult
from ftclient.retry import RetryCallback
from ftclient.tree.jobs import (
    TreeCallback,
    TreeJob,
    TreeMeter,
    TreeReport,
    link_failed,
    lost_link,
    mtimes_differ,
    remote_join,
    transfer_one_by_one,
)

if TYPE_CHECKING:
    from common.io.hashcache import HashCache


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


def put_tree(
    client: Client, local_dir: str, remote_dir: str, *,
    cache: HashCache | None = None, progress: TreeCallback | None = None,
    on_retry: RetryCallback | None = None, keep_existing: bool = False,
) -> TreeReport:
    """Upload the folder ``local_dir`` as ``remote_dir``, skipping files already there;
    with ``keep_existing``, any name the server has is left alone (--no-clobber)."""
    remote_dir = normalize_remote(remote_dir, allow_root=True)
    tree = scan_local(local_dir)
    report = TreeReport(skipped=list(tree.skipped))
    remote = _remote_index(client, remote_dir, on_retry)
    jobs: list[TreeJob] = []
    for relative, path, st in tree.files:
        there = remote.get(relative)
        if there is not None and there.type == "file" and there.size == st.st_size \
                and there.sha256 is not None \
                and local_digest(cache, path, st) == there.sha256:
            name = remote_join(remote_dir, relative)
            report.unchanged.append(name)
            if mtimes_differ(there.mtime, st.st_mtime) and not _set_remote_mtime(
                    client, name, st.st_mtime, report, on_retry):
                # The link is gone before anything moved: fail as a walk would, instead
                # of waiting out the retries again for every file left.
                raise report.failed.pop()[1]
            continue
        if keep_existing and there is not None:
            report.kept.append(remote_join(remote_dir, relative))
            continue
        jobs.append(TreeJob(path, remote_join(remote_dir, relative), st.st_size, st))
    # Uploads create the folders they need; only the others are made here.
    needed = _ancestors({os.path.dirname(job.remote) for job in jobs})
    made: set[str] = set()
    if remote_dir and remote_dir not in needed and not remote:
        client.mkdir(remote_dir, parents=True, on_retry=on_retry)
        report.folders_made += 1
    for relative in tree.folders:
        name = remote_join(remote_dir, relative)
        if relative not in remote and name not in needed:
            client.mkdir(name, parents=True, on_retry=on_retry)
            report.folders_made += 1
            made.add(name)
    if _send(client, jobs, report, cache, progress, on_retry):
        return report  # the link is gone: the folders' mtimes would only wait out retries
    # Folders last, deepest first: what was written into a folder changed its mtime.
    changed = needed | {os.path.dirname(name) for name in made}
    for relative in sorted(tree.folders, key=lambda name: name.count("/"), reverse=True):
        name = remote_join(remote_dir, relative)
        there = remote.get(relative)
        if there is not None and there.type != "dir":
            continue  # a file there: its upload failed already
        try:
            mtime = os.lstat(os.path.join(local_dir, relative)).st_mtime
        except OSError:
            continue  # gone meanwhile
        if there is None or name in changed or mtimes_differ(there.mtime, mtime):
            if not _set_remote_mtime(client, name, mtime, report, on_retry):
                return report
    if remote_dir:  # the walk does not show the top folder itself: always set it
        try:
            _set_remote_mtime(client, remote_dir, os.lstat(local_dir).st_mtime, report,
                              on_retry)
        except OSError:
            pass  # gone meanwhile
    return report


def _set_remote_mtime(client: Client, name: str, mtime: float, report: TreeReport,
                      on_retry: RetryCallback | None) -> bool:
    """Set a remote mtime; False if the link failed for good doing it."""
    try:
        client.set_mtime(name, mtime, on_retry=on_retry)
    except FtError as exc:
        report.failed.append((name, exc))
        return not link_failed(exc)
    return True


def put_files(
    client: Client, local_files: list[str], remote_dir: str, *,
    cache: HashCache | None = None, progress: TreeCallback | None = None,
    on_retry: RetryCallback | None = None, keep_existing: bool = False,
) -> TreeReport:
    """Upload several local files into ``remote_dir`` (created if needed), each by its name;
    with ``keep_existing``, a name the server has is left alone (--no-clobber)."""
    remote_dir = normalize_remote(remote_dir, allow_root=True)
    report = TreeReport()
    there = _names_in(client, remote_dir, on_retry) if keep_existing else set()
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
        if name in there:
            report.kept.append(remote_join(remote_dir, name))
            continue
        jobs.append(TreeJob(path, remote_join(remote_dir, name), st.st_size, st))
    _send(client, jobs, report, cache, progress, on_retry)
    return report


def _names_in(client: Client, remote_dir: str, on_retry: RetryCallback | None) -> set[str]:
    """The names in a remote folder (none if it does not exist yet)."""
    try:
        return {entry.name for entry in client.list(remote_dir, on_retry=on_retry)}
    except NotFound:
        return set()


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


def _send(client: Client, jobs: list[TreeJob], report: TreeReport, cache: HashCache | None,
          progress: TreeCallback | None, on_retry: RetryCallback | None) -> FtError | None:
    """Small files pipelined, then large ones one by one; the error that ended the link, if
    it failed for good (the files after it are failed, not tried)."""
    meter = TreeMeter(jobs, progress)
    small = [job for job in jobs if job.size <= PIPELINE_MAX_SIZE]
    by_local = {job.local: job for job in jobs}
    results = client.put_many([PipedFile(job.local, job.remote) for job in small],
                              meter.answered, on_retry=on_retry)
    for result in results:
        _record(report, result.remote, result, cache, by_local[result.local])

    def put_one(job: TreeJob) -> PipedResult:
        done = client.put(job.local, job.remote, progress=meter.one_file(job.remote),
                          on_retry=on_retry)
        return PipedResult(job.local, job.remote, done.size, done.sha256,
                           resumed_from=done.resumed_from)

    return transfer_one_by_one([job for job in jobs if job.size > PIPELINE_MAX_SIZE],
                               lost_link(results), report, meter, lambda job: job.remote,
                               put_one,
                               lambda job, result: _record(report, job.remote, result, cache,
                                                           job))


def _record(report: TreeReport, name: str, result: PipedResult, cache: HashCache | None,
            job: TreeJob) -> None:
    if result.error is not None or result.sha256 is None:
        report.failed.append((name, result.error or NotFound(f"{name!r} failed")))
        return
    report.sent.append(name)
    report.bytes_sent += result.size
    report.bytes_moved += result.size - result.resumed_from
    if job.st is not None:
        remember(cache, job.local, job.st, result.sha256)
