"""Feed a range of an open file to a SHA-256 by reading it through a memory map.

This is the hashing half of a put that sends with sendfile(2)
(``common.filesend``): hashlib reads the page cache through the map, so the bytes
are neither copied into a buffer to hash them nor copied again to send them.
Measured on loopback (1 GiB, 2 cores, the sender's CPU alone): 1.7-1.9 s a GiB for
read + hash + send against 1.1-1.2 s for map + hash + sendfile, the receiver's
unchanged. Reading into a buffer and then sending with sendfile saved nothing;
the copy into the buffer is what costs.

A map is a promise the file can break: reading a mapped page past the file's end
(someone truncated it) raises SIGBUS, which kills the process. So this module
checks the file's size before it maps each window (a shrunk file raises
SourceChanged, as a short read does), maps no more than one window at a time and
unmaps it at once. The check and the read are not atomic: a truncation in the
millisecond between them still kills the process. That is why only the client
uses it (for its own files, where the worst case is one failed upload that the
next ``put`` resumes) and the server, which must outlive any file in its share,
never does.

Where a file cannot be mapped (a filesystem without mmap, another OS's limits)
the window is read with pread instead, and the same file is not mapped again.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat

from common.errors import SourceChanged

MAP_WINDOW = 1024 * 1024
"""Most bytes mapped at once; larger ranges are hashed a window at a time."""
READ_CHUNK = 256 * 1024
"""Bytes per pread where a file cannot be mapped."""


class MappedHasher:
    """Feeds ``hasher`` the bytes of ``fd`` a range at a time, through a map when it can.

    Ranges must be given in order with no gap (``update(a, b)`` then ``update(b, c)``),
    as a sender that hashes what it is about to send does.
    """

    def __init__(self, fd: int, hasher: hashlib._Hash) -> None:
        self.fd = fd
        self.hasher = hasher
        self.mappable = True

    def update(self, start: int, stop: int) -> None:
        """Hash bytes ``start`` to ``stop``; SourceChanged if the file no longer holds them."""
        st = os.fstat(self.fd)
        if not stat.S_ISREG(st.st_mode):
            self.mappable = False  # pread says what is wrong with it (EISDIR, say)
        elif st.st_size < stop:
            raise SourceChanged("the file shrank while it was sent")
        position = start
        while position < stop:
            window_end = min(stop, position + MAP_WINDOW)
            if self.mappable:
                try:
                    self._hash_mapped(position, window_end)
                except OSError:  # ENODEV, EINVAL, EACCES: this file cannot be mapped
                    self.mappable = False
                    continue
            else:
                self._hash_read(position, window_end)
            position = window_end

    def _hash_mapped(self, start: int, stop: int) -> None:
        aligned = start - start % mmap.ALLOCATIONGRANULARITY  # a map starts on a page
        with mmap.mmap(self.fd, stop - aligned, offset=aligned,
                       access=mmap.ACCESS_READ) as mapped:
            with memoryview(mapped)[start - aligned:] as view:  # released before the unmap
                self.hasher.update(view)

    def _hash_read(self, start: int, stop: int) -> None:
        buffer = memoryview(bytearray(min(READ_CHUNK, stop - start)))
        position = start
        while position < stop:
            got = os.preadv(self.fd, [buffer[: min(stop - position, len(buffer))]], position)
            if got == 0:
                raise SourceChanged("the file shrank while it was sent")
            self.hasher.update(buffer[:got])
            position += got
