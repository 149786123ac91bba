"""Turning a client's name into a file of the share: the one module that does it.

A name has passed the protocol's rules (common/protocol/names.py) before it comes
here. ``Names`` then

- resolves it to its real path under the root (``resolve``): symlinks inside the
  share are followed; one that leads outside, or to a reserved name, is refused;
- or resolves only its folder (``locate``), for move, remove and set_mtime, which
  act on the entry itself and never on what a symlink there points at;
- opens what it names (``open_path``, ``open_for_read``, ``open_parent``,
  ``open_folder_of``) by walking from the root one component at a time without
  following a symlink (confine.py): a folder swapped for a link between the check
  and the open is refused, never followed out of the share;
- says what a symlink shown in a listing or a walk leads to (``link_target``), with
  the same check.

Nothing else in the server maps a client's name to a path or a descriptor.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass

from common.protocol.errors import (
    BadPath,
    IsADirectory,
    Locked,
    NotADirectory,
    NotFound,
    PermissionDenied,
)
from common.protocol.names import check_component, is_within, split_path
from ftserver.store.confine import SWAPPED, make_dirs_beneath, open_path_beneath, reopen
from ftserver.store.diskerrors import storage_error
from ftserver.store.treelock import FolderLocks


@dataclass(frozen=True)
class Target:
    """A client-named path resolved under the root."""

    name: str
    real: str
    key: str
    """Hex digest of ``real``: names the partial and the name lock of this target."""

    @property
    def folder(self) -> str:
        """The real path of the folder it is (or would be) in."""
        return os.path.dirname(self.real)


@dataclass(frozen=True)
class Entry:
    """A client-named entry, its parent folder resolved (symlinks followed), itself not."""

    name: str
    folder: str
    """Real absolute path of the parent folder (checked to be inside the root)."""
    base: str
    """The entry's own name within ``folder``."""

    @property
    def path(self) -> str:
        """Absolute path of the entry itself: for messages, lock keys and the hash cache only."""
        return os.path.join(self.folder, self.base)

    def real(self) -> str:
        """The entry's own real path, a symlink at it followed (BadPath if it changes meanwhile)."""
        return _realpath(self.path, self.name)

    @property
    def lock_key(self) -> str:
        """The key an upload to this name locks (Target.key for the same name)."""
        return lock_key(self.real())


@dataclass(frozen=True)
class OpenFolder:
    """An O_PATH descriptor of a folder in the share, and the filesystem it is on."""

    fd: int
    dev: int


def lock_key(real: str) -> str:
    """The key naming the partial and the name lock of an upload to the real path ``real``."""
    return hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()


class Names:
    """The names of one share (or of one user's home in it), whose real root is ``root_real``."""

    def __init__(self, root_real: str) -> None:
        self.root_real = root_real

    # ------------------------------------------------------------ resolving

    def resolve(self, name: str, *, allow_root: bool = False) -> Target:
        """The real path ``name`` stands for: symlinks followed, escapes refused (BadPath)."""
        parts = split_path(name, allow_root=allow_root)
        try:
            real = resolve_under(self.root_real, parts)
        except OSError as exc:  # a link swapped for a file mid-way makes readlink fail
            if exc.errno == errno.EINVAL:
                raise BadPath(SWAPPED) from None
            raise storage_error(exc, repr(name)) from None
        if real != self.root_real:
            # A symlink inside the share may point at a reserved name; refuse that too.
            check_component(os.path.basename(real))
        return Target(name, real, lock_key(real))

    def locate(self, name: str) -> Entry:
        """``name``'s folder resolved (symlinks followed, escapes refused), the entry not."""
        parts = split_path(name)
        try:
            parent = resolve_under(self.root_real, parts[:-1])
        except OSError as exc:
            raise _resolve_error(exc, name) from None
        return Entry(name, parent, parts[-1])

    def target_in(self, folder: OpenFolder, folder_real: str, name: str) -> Target | None:
        """``resolve(name)`` for a name whose folder is already open as ``folder`` (walked to
        from the root, at ``folder_real``) and whose last part is missing there or a regular
        file: one fstatat instead of a walk from the root. A folder there raises
        IsADirectory; anything else (a symlink, to be followed) gives None, for ``resolve``.
        """
        leaf = name.rpartition("/")[2]
        check_component(leaf)
        try:
            st = os.stat(leaf, dir_fd=folder.fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        except OSError:
            return None
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectory(f"{name!r} is a folder")
            if not stat.S_ISREG(st.st_mode):
                return None
        real = os.path.join(folder_real, leaf)
        return Target(name, real, lock_key(real))

    def resolve_held(self, name: str, folders: FolderLocks) -> Target:
        """``resolve``, holding the folder locks above the target shared in ``folders``.

        Resolved again once its folder is locked, so that a folder moved between the
        look-up and the lock (through a symlink, say) is not missed.
        """
        for _ in range(3):
            target = self.resolve(name)
            if folders.holds(target.folder):
                return target
            folders.share(target.folder)
        raise Locked(f"the folders on the way to {name!r} keep moving; try again")

    # ------------------------------------------------------------ opening

    def open_path(self, target: Target) -> int:
        """An O_PATH fd of the target, reached without following a symlink swapped in since
        ``resolve`` (see confine.py); the caller closes it."""
        try:
            return open_path_beneath(self.root_real, target.real)
        except OSError as exc:
            raise storage_error(exc, repr(target.name)) from None

    def open_existing(self, target: Target) -> int:
        """``open_path``, worded for a name that must exist: NotFound ("does not exist") if it
        or a folder on its way is missing or a file."""
        try:
            return open_path_beneath(self.root_real, target.real)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"{target.name!r} does not exist") from None
        except OSError as exc:
            raise storage_error(exc, repr(target.name or "/")) from None

    def make_dirs(self, target: Target) -> None:
        """Create the folder ``target`` and its missing parents, durably, each step entered
        without following a symlink (confine.py); OSError for the caller to word."""
        make_dirs_beneath(self.root_real, target.real)

    def open_for_read(self, target: Target) -> tuple[int, os.stat_result]:
        """Open a regular file, never opening a FIFO or device; return the fd and its fstat."""
        path_fd = self.open_path(target)
        try:
            st = os.fstat(path_fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectory(f"{target.name!r} is a folder")
            if not stat.S_ISREG(st.st_mode):
                raise PermissionDenied(f"{target.name!r} is not a regular file")
            try:
                fd = reopen(path_fd, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                raise storage_error(exc, repr(target.name)) from None
        finally:
            os.close(path_fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise PermissionDenied(f"{target.name!r} is not a regular file")
        os.set_blocking(fd, True)
        return fd, st

    def open_parent(self, target: Target, *, create: bool = True) -> OpenFolder:
        """The target's folder, reached from the root without following a symlink (confine.py).

        With ``create``, missing folders are made first (durably); mkdir is only
        tried when the walk finds one missing. The caller closes the descriptor.
        """
        folder = os.path.dirname(target.real)
        try:
            try:
                fd = open_path_beneath(self.root_real, folder)
            except FileNotFoundError:
                if not create:
                    raise
                make_dirs_beneath(self.root_real, folder)
                fd = open_path_beneath(self.root_real, folder)
        except (FileExistsError, NotADirectoryError):
            raise NotADirectory(f"a parent of {target.name!r} is not a folder") from None
        except OSError as exc:
            raise storage_error(exc, f"the folder of {target.name!r}") from None
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            os.close(fd)
            raise NotADirectory(f"a parent of {target.name!r} is not a folder")
        return OpenFolder(fd, st.st_dev)

    def refuse_folder_name(self, parent: OpenFolder, target: Target) -> None:
        """IsADirectory if the target names a folder (in ``parent``, from ``open_parent``)."""
        try:
            st = os.stat(os.path.basename(target.real), dir_fd=parent.fd)
        except OSError:
            return  # a new name (or one the rename will answer for)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectory(f"{target.name!r} is a folder")

    def open_folder_of(self, entry: Entry) -> int:
        """An O_PATH descriptor of the entry's parent folder, reached without following symlinks.

        OSError for a folder that is missing or not a folder (the caller words it),
        BadPath if a component was swapped for a symlink since ``locate``.
        """
        fd = open_path_beneath(self.root_real, entry.folder)
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        return fd

    def link_target(self, link: str) -> tuple[str, os.stat_result] | None:
        """The real path and stat of what a symlink in the share leads to, if that is inside it.

        The target is reached from the root without following symlinks (confine.py),
        so a folder swapped for a link on the way is refused rather than followed out,
        and a link swapped in after the look-up cannot show an outside file's size or time.
        """
        try:
            real = os.path.realpath(link)
        except OSError:
            return None  # the link changed while it was read
        if not is_within(self.root_real, real):
            return None
        try:
            fd = open_path_beneath(self.root_real, real)
        except (BadPath, OSError):
            return None
        try:
            return real, os.fstat(fd)
        finally:
            os.close(fd)


def _realpath(path: str, name: str) -> str:
    """``os.path.realpath``, its errors (a link changing while it is read) as ft errors."""
    try:
        return os.path.realpath(path)
    except OSError as exc:
        raise _resolve_error(exc, name) from None


def _resolve_error(exc: OSError, name: str) -> Exception:
    # realpath saw a symlink that was gone or no longer a link when it read it.
    if exc.errno in (errno.EINVAL, errno.ENOENT):
        return BadPath(SWAPPED)
    return storage_error(exc, repr(name))


def resolve_under(root_real: str, parts: tuple[str, ...]) -> str:
    """Return the real absolute path of ``parts`` under the root, refusing escapes.

    Symlinks are followed; a result outside ``root_real`` raises BadPath. The
    last component need not exist (a new upload); its parent is resolved instead.
    """
    real = _real_beneath(root_real, parts)
    if not is_within(root_real, real):
        raise BadPath("path leaves the shared folder")
    return real


def _real_beneath(root_real: str, parts: tuple[str, ...]) -> str:
    """``os.path.realpath`` of ``parts`` under ``root_real``, which is real already.

    Only the parts are looked at, one lstat each; realpath itself (which re-checks
    every component from ``/``) runs only when one of them is a symlink. Past a part
    that cannot be looked at (missing), realpath keeps the rest as named, and so
    does this.
    """
    path = root_real
    for part in parts:
        path = os.path.join(path, part)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return os.path.join(root_real, *parts)
        if stat.S_ISLNK(mode):
            return os.path.realpath(os.path.join(root_real, *parts))
    return path
