"""A tus upload as a third-party client makes it: tuspy, one file, chunks of a given size.

Run as a process by the HTTP case (httpcases.py), so its time includes the client's
start-up as ``ftclient put``'s does: ``python tusput.py URL FILE NAME CHUNK_BYTES``.
"""

from __future__ import annotations

import sys

from tusclient import client


def main() -> None:
    url, path, name, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    uploader = client.TusClient(url).uploader(path, chunk_size=chunk,
                                              metadata={"filename": name})
    uploader.upload()


if __name__ == "__main__":
    main()
