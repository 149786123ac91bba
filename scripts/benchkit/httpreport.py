"""The HTTP case's section of the page: its targets as ratios, and each step's speed with
the CPU that it cost each side.

The section's heading names the folder the data was in, so that ``--merge`` can put
the run on tmpfs and the run on the disk side by side in one page, each replacing
only its own earlier section (merge.py).
"""

from __future__ import annotations

import os

from benchkit.figures import Results
from benchkit.report import (
    Target,
    check,
    filesystem_of,
)

TARGETS = (
    Target("curl GET from ft ≥ 0.8× nginx", "http-get-ft", "http-get-nginx", 0.8),
    Target("curl GET from ft ≥ 1.0× copyparty", "http-get-ft", "http-get-copyparty", 1.0),
    Target("curl -T into ft ≥ 1.0× copyparty's PUT", "http-put-ft", "http-put-copyparty", 1.0),
    Target("curl -T into ft ≥ 0.8× ftclient put", "http-put-ft", "http-put-ftclient", 0.8),
    Target("tus upload, 64 MiB chunks ≥ 0.6× ftclient put", "http-put-tus",
           "http-put-ftclient", 0.6),
)
STEPS = ("http-get-ft", "http-get-nginx", "http-get-copyparty", "http-put-ft",
         "http-put-copyparty", "http-put-ftclient", "http-put-tus")
NOTE_PREFIX = "http"
"""Skip notes of this case begin so."""

ABOUT = (
    "curl downloads one file (`curl -o`) from ftserver's HTTP on its own port, from "
    "nginx (Debian's nginx-light: sendfile on, one worker, no access log) and from "
    "copyparty (PyPI, its defaults: sendfile); it uploads one (`curl -T`, an HTTP PUT) "
    "into ftserver and into copyparty, beside `ftclient put` into ftserver. All on "
    "127.0.0.1, one file hard-linked into each server's folder; the steps of a kind "
    "take turns within a round, the order moved on by one a round, with one untimed "
    "download first and a sync after every step. ftserver's PUT and ftclient put hash "
    "the body (SHA-256), fsync and rename before answering; copyparty's PUT hashes it "
    "too (SHA-512, its default `--put-ck`) and does not fsync; nginx is only "
    "downloaded from. `ftclient put` is the command, with Python's start-up (about "
    "0.2 s of CPU here). CPU is user and system seconds per GiB: both ends, the "
    "server's process tree, and the rest (the client: curl or ftclient). With the data "
    "on a disk, the file served was just written and is read from the page cache; "
    "what a step writes reaches the disk in the untimed sync after it, except what a "
    "server fsyncs before it answers."
)


def heading(data_dir: str) -> str:
    return f"## HTTP: curl beside nginx and copyparty (issue 15), data in {data_dir}"


def section(results: Results, command: str, data_dir: str, when: str, size_mib: int,
            rounds: int, load_at_start: str) -> list[str]:
    """The section's lines; none if the HTTP case did not run. ``load_at_start``: the
    load average (1, 5, 15 min) when the run began, as text."""
    notes = [note for note in results.skipped if note.startswith(NOTE_PREFIX)]
    if not notes and not any(key in results.figures for key in STEPS):
        return []
    lines = ["", heading(data_dir), "",
             f"Command: `{command}`, run {when}: one file of {size_mib} MiB, "
             f"{rounds} round{'' if rounds == 1 else 's'}, data in {data_dir}: "
             f"{filesystem_of(data_dir)}; load average (1, 5, 15 min) {load_at_start} at "
             "the start, " + " ".join(f"{load:.1f}" for load in os.getloadavg())
             + " at the end (2 cores, shared with other jobs).", "", ABOUT, "",
             "### Targets", "",
             "Ratios are of medians; beside each, the lowest and highest ratio of a single "
             "round.", "", "| target | measured | result |", "|---|---|---|"]
    for target in TARGETS:
        shown, verdict = check(target, results)
        lines.append(f"| {target.what} | {shown} | {verdict} |")
    lines += ["", "### Steps", "",
              "| step | MB/s | rounds (min–max) | CPU s/GiB, both ends | server | client |",
              "|---|---|---|---|---|---|"]
    for key in STEPS:
        figure = results.figures.get(key)
        if figure is None or not figure.values:
            continue
        cpu = [results.median(f"{key}-{side}") for side in ("cpu", "server-cpu", "client-cpu")]
        shown = ["" if value is None else f"{value:.2f}" for value in cpu]
        lines.append(f"| {figure.label} | {figure.median:.0f} | {figure.spread} | "
                     + " | ".join(shown) + " |")
    lines += where_the_time_goes(results)
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    return lines


def where_the_time_goes(results: Results) -> list[str]:
    """Sentences from this run's CPU medians: which side each kind of step spent on."""
    def side(key: str, which: str) -> float | None:
        return results.median(f"{key}-{which}-cpu")

    def named(keys: tuple[str, ...], which: str) -> list[str]:
        return [f"{results.figures[key].label.rsplit(' ', 1)[-1]} {value:.2f}"
                for key in keys if (value := side(key, which)) is not None]

    lines = []
    gets = ("http-get-ft", "http-get-nginx", "http-get-copyparty")
    servers = [v for key in gets if (v := side(key, "server")) is not None]
    clients = [v for key in gets if (v := side(key, "client")) is not None]
    if servers and clients:
        most = (": most of a download's cost is curl writing the file, whichever server "
                "sends it" if max(servers) < min(clients) / 2 else "")
        lines.append(f"- Downloads, CPU s/GiB (medians): the server's "
                     f"{', '.join(named(gets, 'server'))}; curl's "
                     f"{min(clients):.2f}–{max(clients):.2f}{most}.")
    puts = ("http-put-ft", "http-put-copyparty")
    if all(side(key, "server") is not None for key in puts):
        lines.append(f"- Uploads by curl -T, the server's CPU s/GiB (medians): "
                     f"ft {side(puts[0], 'server'):.2f} (SHA-256, fsync), "
                     f"copyparty {side(puts[1], 'server'):.2f} (SHA-512).")
    ours, theirs = side("http-put-ftclient", "client"), side("http-put-ft", "client")
    if ours is not None and theirs is not None:
        lines.append(f"- Into ft, the client's CPU s/GiB (medians): ftclient put {ours:.2f} "
                     f"(it hashes what it sends, and starts Python), curl -T {theirs:.2f}.")
    return ["", "### Where the time goes", "", *lines] if lines else []

