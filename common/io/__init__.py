"""The I/O both ends share: the channel over a socket, the send and receive loops,
deadlines, rate limits, hashing files, durability and the digest cache."""
