"""Whole folders and several files at once: ``put -r``, ``get -r``, multi-file put and get.

The library's entry points; each side lives in its own module (upload.py,
download.py) over what both share (jobs.py).
"""

from ftclient.tree.download import get_files, get_tree
from ftclient.tree.jobs import TreeCallback, TreeProgress, TreeReport
from ftclient.tree.upload import LocalTree, put_files, put_tree, scan_local

__all__ = ["LocalTree", "TreeCallback", "TreeProgress", "TreeReport", "get_files", "get_tree",
           "put_files", "put_tree", "scan_local"]
