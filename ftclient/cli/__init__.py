"""The ftclient command line: the only part of ftclient that prints (and knows tqdm)."""
