"""Where one upload goes on the local disk: the target, its folder's descriptor, its partials.

The ``Place`` of store/base.py for the local store. The folder is the one names.py
walked to from the root without following a symlink; the partials folder is the one
on that folder's own filesystem (partials.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ftserver.store.base import Published
from ftserver.store.names import OpenFolder, Target
from ftserver.store.partials import PartialsFolder


@dataclass(frozen=True)
class LocalPlace:
    target: Target
    folder: OpenFolder
    partials: PartialsFolder

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def base(self) -> str:
        """The file's own name in its folder."""
        return os.path.basename(self.target.real)


def published_from(st: os.stat_result) -> Published:
    return Published(st.st_size, st.st_mtime, st)
