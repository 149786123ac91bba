"""``get -r`` and many-file get, confined to the destination folder.

Every path a server names has passed the path rules already (``Client.walk``),
and the folder it lands in is checked to lie inside the destination before
anything is written, so a hostile server (or a symlink planted in the
destination) cannot direct a write elsewhere. The writes themselves (folders made,
partials opened and renamed, mtimes set) reach their folder from the destination by
descriptor, never through a symlink (``localfiles.open_folder``): a process swapping
a subfolder for a symlink while the download runs cannot send a file outside. Files
unchanged locally (size and SHA-256, from the digest cache) are skipped; folders get
the server's mtimes last.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from common.protocol.errors import FtError, NotFound, PermissionDenied
from common.protocol.fields import mtime_ns
from common.protocol.names import MAX_FOLDER_DEPTH, is_within, split_path
from common.protocol.replies import WalkEntry
from ftclient.client import Client
from ftclient.digests import local_digest, remember
from ftclient.localfiles import local_error, lstat_spot, open_folder, partial_path_for, spot_for
from ftclient.names import normalize_remote, remote_basename
from ftclient.pipeline import PIPELINE_MAX_SIZE, PipedFile, PipedResult
from ftclient.retry import RetryCallback
from ftclient.tree.jobs import (
    TreeCallback,
    TreeJob,
    TreeMeter,
    TreeReport,
    lost_link,
    mtimes_differ,
    remote_join,
    transfer_one_by_one,
)

if TYPE_CHECKING:
    from common.io.hashcache import HashCache


def get_tree(
    client: Client, remote_dir: str, local_dir: str, *,
    cache: HashCache | None = None, progress: TreeCallback | None = None,
    on_retry: RetryCallback | None = None, keep_existing: bool = False,
) -> TreeReport:
    """Download the remote folder ``remote_dir`` as ``local_dir``, skipping files held already;
    with ``keep_existing``, any local file there is left alone (--no-clobber)."""
    remote_dir = normalize_remote(remote_dir, allow_root=True)
    entries = client.walk(remote_dir, on_retry=on_retry)
    os.makedirs(local_dir, exist_ok=True)
    root = os.path.realpath(local_dir)
    report = TreeReport()
    jobs: list[TreeJob] = []
    folders: list[tuple[tuple[str, ...], float]] = []  # (folder below root, server's mtime)
    folder_inside: dict[str, bool] = {}  # many files share a folder: resolve each once
    for entry in entries:
        parts = split_path(entry.path)  # Client.walk checked it; cheap to be sure
        local = os.path.join(root, *parts)
        if len(parts) > MAX_FOLDER_DEPTH:  # os.makedirs recurses: a 2,000-deep one crashed
            report.skipped.append((local, f"more than {MAX_FOLDER_DEPTH} folders deep"))
            continue
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
                os.close(open_folder(root, parts, create=True))
            except PermissionDenied:
                report.skipped.append((local, "would leave the destination folder"))
            except OSError as exc:
                report.failed.append((local, _local_failure(local, exc)))
            else:
                folders.append((parts, entry.mtime))
            continue
        if _unchanged_locally(cache, local, entry):
            report.unchanged.append(local)
            _set_local_mtime(root, parts, entry.mtime, report, cache, entry.sha256)
            continue
        if keep_existing and os.path.lexists(local):
            report.kept.append(local)
            continue
        jobs.append(TreeJob(local, remote_join(remote_dir, entry.path), entry.size))
    lost = _fetch(client, jobs, report, cache, progress, on_retry, within=root)
    # Folders last, deepest first: writing into a folder changed its mtime.
    for parts, mtime in sorted(folders, key=lambda item: len(item[0]), reverse=True):
        _set_local_mtime(root, parts, mtime, report)
    if remote_dir and lost is None:
        try:
            top = client.stat(remote_dir, on_retry=on_retry)
        except FtError as exc:
            report.failed.append((root, exc))
        else:
            _set_local_mtime(root, (), top.mtime, report)
    return report


def _set_local_mtime(root: str, parts: tuple[str, ...], mtime: float, report: TreeReport,
                     cache: HashCache | None = None, sha256: str | None = None) -> None:
    """Give ``root``/``parts`` (never a symlink, its folder reached by descriptor) the mtime
    ``mtime`` if it differs; ``parts`` empty: ``root`` itself."""
    local = os.path.join(root, *parts)
    name = parts[-1] if parts else "."
    try:
        folder = open_folder(root, parts[:-1])
    except PermissionDenied:
        return  # swapped for a way out since it was checked: leave it alone
    except OSError as exc:
        report.failed.append((local, local_error(exc, f"cannot set the mtime of {local!r}")))
        return
    try:
        st = os.stat(name, dir_fd=folder, follow_symlinks=False)
        if not mtimes_differ(st.st_mtime, mtime) or stat.S_ISLNK(st.st_mode):
            return
        os.utime(name, ns=(st.st_atime_ns, mtime_ns(mtime)), dir_fd=folder,
                 follow_symlinks=False)
        if sha256 is not None:  # the new mtime (and ctime) must not cost a re-read
            remember(cache, local, os.stat(name, dir_fd=folder, follow_symlinks=False), sha256)
    except OSError as exc:
        report.failed.append((local, local_error(exc, f"cannot set the mtime of {local!r}")))
    finally:
        os.close(folder)


def get_files(
    client: Client, remote_names: list[str], local_dir: str, *,
    cache: HashCache | None = None, progress: TreeCallback | None = None,
    on_retry: RetryCallback | None = None, keep_existing: bool = False,
) -> TreeReport:
    """Download several remote files into the existing local folder ``local_dir``; with
    ``keep_existing``, a local file there is left alone (--no-clobber)."""
    if not os.path.isdir(local_dir):
        raise NotFound(f"local folder {local_dir!r} does not exist")
    report = TreeReport()
    jobs = []
    folder = os.path.abspath(local_dir)
    for name in remote_names:
        remote = normalize_remote(name)
        local = os.path.join(folder, remote_basename(remote))
        if keep_existing and os.path.lexists(local):
            report.kept.append(local)
            continue
        jobs.append(TreeJob(local, remote, 0))
    _fetch(client, jobs, report, cache, progress, on_retry)
    return report


def _inside(root: str, local: str) -> bool:
    """True if ``local``'s folder resolves inside ``root`` (a first check, for the report;
    the writes are confined by descriptor whatever happens after it)."""
    return is_within(root, os.path.realpath(os.path.dirname(local)))


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


def _fetch(client: Client, jobs: list[TreeJob], report: TreeReport, cache: HashCache | None,
           progress: TreeCallback | None, on_retry: RetryCallback | None,
           within: str | None = None) -> FtError | None:
    """Small or unknown-size files pipelined; large ones, and any with a partial to resume,
    through the resumable get. Returns as ``_send`` does. ``within``: as ``PipedFile``'s."""
    meter = TreeMeter(jobs, progress)
    resumable = [job.size > PIPELINE_MAX_SIZE or os.path.exists(partial_path_for(job.local))
                 for job in jobs]
    one_by_one = [job for job, alone in zip(jobs, resumable, strict=True) if alone]
    piped = [job for job, alone in zip(jobs, resumable, strict=True) if not alone]
    by_local = {job.local: job for job in jobs}
    results = client.get_many([PipedFile(job.local, job.remote, within) for job in piped],
                              meter.answered, on_retry=on_retry)
    for result in results:
        _record_download(report, result, cache, by_local[result.local], within)

    def get_one(job: TreeJob) -> PipedResult:
        done = client.get(job.remote, job.local, progress=meter.one_file(job.remote),
                          on_retry=on_retry, within=within)
        return PipedResult(job.local, job.remote, done.size, done.sha256,
                           resumed_from=done.resumed_from)

    return transfer_one_by_one(
        one_by_one, lost_link(results), report, meter, lambda job: job.local, get_one,
        lambda job, result: _record_download(report, result, cache, job, within))


def _record_download(report: TreeReport, result: PipedResult, cache: HashCache | None,
                     job: TreeJob, within: str | None) -> None:
    if result.error is not None or result.sha256 is None:
        report.failed.append((job.local, result.error or NotFound(f"{job.remote!r} failed")))
        return
    report.sent.append(job.local)
    report.bytes_sent += result.size
    report.bytes_moved += result.size - result.resumed_from
    try:  # the file just published, reached as it was written (never through a symlink)
        remember(cache, job.local, lstat_spot(spot_for(job.local, within)), result.sha256)
    except (OSError, FtError):
        pass
