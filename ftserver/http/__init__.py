"""HTTP and HTTPS on ft's own port: browsers, curl and wget reach the share (issue 15).

h11 parses and writes HTTP/1.1; these modules are thin adapters over the one
download and the one upload (ftserver/ops/) and the store's one owner of names.
"""
