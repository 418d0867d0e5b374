"""``herd pull REPO [--quant Q]`` and ``herd models``: the Hub and the library, no window.

``pull`` prints progress on stderr and the path to load on stdout, so
``herd chat "$(herd pull REPO)"`` works. Ctrl+C pauses: the same command resumes. Every
failure is one ``herd: ...`` line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from app.core.errors import HerdError, one_line
from app.core.hub import catalog, library
from app.core.hub.catalog import CURATED, QuantOption, RepoQuants
from app.core.hub.errors import RepoNotFoundError
from app.core.hub.jobs import (
    DownloadControl,
    DownloadDone,
    DownloadProgress,
    DownloadQueue,
    DownloadRequest,
    DownloadStopped,
    JobState,
)
from app.core.hub.service import HubService, verdicts
from app.core.paths import AppPaths
from app.core.units import size_text

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``herd pull`` and ``herd models`` on the main parser's subcommands."""
    pull = sub.add_parser("pull", help="download a GGUF model from the Hugging Face Hub")
    pull.add_argument("repo", help="owner/name of a GGUF repository")
    pull.add_argument("--quant", help="which quant, e.g. Q4_K_M (default: the best that fits)")
    pull.add_argument("--no-projector", action="store_true", help="skip the vision projector")
    pull.add_argument("--list", action="store_true", help="list the quants and verdicts only")
    pull.add_argument(
        "--plan",
        action="store_true",
        help="with --list: the planner's verdicts, from each quant's GGUF headers (a few MB each)",
    )
    pull.add_argument("--offline", action="store_true", help="use only the local cache")
    models = sub.add_parser(
        "models",
        help="list the models on this machine (Hugging Face cache, LM Studio, Ollama, "
        "your folders)",
    )
    models.add_argument("--json", action="store_true", help="print JSON for scripts")
    models.add_argument(
        "--add-folder",
        metavar="DIR",
        help="also look for .gguf models in DIR and below it (nothing is copied)",
    )
    models.add_argument("--remove-folder", metavar="DIR", help="stop looking in DIR")
    models.add_argument(
        "--folders", action="store_true", help="list the folders Herd looks in, and exit"
    )


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _fail(message: str) -> int:
    _err(f"herd: {message}")
    return EXIT_ERROR


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run_models(args: argparse.Namespace, paths: AppPaths) -> int:
    """``herd models``: the local models, most recently used first; or change the folders."""
    try:
        if args.add_folder:
            folder = library.add_folder(paths, Path(args.add_folder))
            _err(f"herd: Herd now also looks in {folder}")
        if args.remove_folder:
            if not library.remove_folder(paths, Path(args.remove_folder)):
                return _fail(f"{args.remove_folder} is not one of your folders (see --folders).")
            _err(f"herd: Herd no longer looks in {args.remove_folder}")
    except HerdError as exc:
        return _fail(exc.one_line())
    if args.folders:
        return _print_folders(paths, as_json=args.json)
    found = library.scan(paths)
    for skipped in found.skipped:
        _err(f"herd: skipped {skipped}")
    models = found.models
    if args.json:
        rows = [
            {
                "name": m.name,
                "quant": m.quant,
                "size": m.size,
                "parts": m.n_parts,
                "source": m.source,
                "path": str(m.path),
                "projector": str(m.projector) if m.projector else None,
                "last_used": m.last_used,
                "origin": m.origin.value,
                "where": m.where,
            }
            for m in models
        ]
        _out(json.dumps(rows, indent=2))
        return EXIT_OK
    if not models:
        _err(
            "No models yet. Download one with: herd pull REPO --quant Q4_K_M\n"
            "or look in a folder of yours with: herd models --add-folder DIR"
        )
        return EXIT_OK
    for m in models:
        parts = f" ({m.n_parts} parts)" if m.n_parts > 1 else ""
        _out(f"{m.name:<52} {m.quant:<10} {size_text(m.size):>10}{parts}  {m.where}\n    {m.path}")
    return EXIT_OK


def _print_folders(paths: AppPaths, *, as_json: bool) -> int:
    rows = [
        {"origin": o.value, "where": o.label, "path": str(f), "exists": f.is_dir()}
        for o, f in library.sources(paths)
    ]
    if as_json:
        _out(json.dumps(rows, indent=2))
    else:
        for row in rows:
            _out(f"{row['where']:<20} {row['path']}{'' if row['exists'] else '  (not there)'}")
    return EXIT_OK


def run_pull(
    args: argparse.Namespace, paths: AppPaths, environ: Mapping[str, str] | None = None
) -> int:
    """``herd pull``: download (or resume) one quant and print the file to load."""
    service = HubService(paths, environ=os.environ if environ is None else environ)
    service.offline = args.offline
    if "/" not in args.repo.strip("/"):
        return _matches(service, args.repo.strip())
    try:
        quants = service.quants(args.repo.strip("/"))
    except RepoNotFoundError:
        return _matches(service, args.repo.strip("/"))
    except HerdError as exc:
        return _fail(exc.one_line())
    try:
        if not quants.quants:
            return _fail(f"{quants.repo_id} has no GGUF model files.")
        if args.list:
            _print_quants(service, quants, planned=args.plan)
            return EXIT_OK
        option = quants.find(args.quant) if args.quant else _best(quants)
    except HerdError as exc:
        return _fail(exc.one_line())
    request = DownloadRequest.for_quant(quants, option, projector=not args.no_projector)
    return _download(service, request)


def _matches(service: HubService, term: str) -> int:
    """No repository has that exact name: list the GGUF repositories matching it (exit 2)."""
    low = term.lower()
    names = [c.repo_id for c in CURATED if low in c.repo_id.lower()]
    note = ""
    if not service.offline:
        try:
            names += [h.repo_id for h in catalog.search(service.client(), term, limit=20)]
        except HerdError as exc:
            note = f" (the Hub could not be searched: {exc.user_message})"
    found = list(dict.fromkeys(names))  # curated first, each once
    missing = f"{term} was not found on the Hub" if "/" in term else f"no repository is {term!r}"
    if not found:
        return _fail(
            f"{missing.replace('no repository', 'No repository', 1)}, and none matches it{note}. "
            "Try a word like scout or maverick, or a full owner/name."
        )
    _err(f"herd: {missing}; these match it{note}:")
    for name in found:
        _out(name)
    _err("herd: pull one with `herd pull OWNER/NAME` (add --list to see its quants).")
    return EXIT_ERROR


def _print_quants(service: HubService, quants: RepoQuants, *, planned: bool) -> None:
    from app.core.hardware.probe import probe_hardware

    hardware = probe_hardware()
    judged, best = verdicts(quants, hardware)
    for i, (q, v) in enumerate(zip(quants.quants, judged, strict=True)):
        text = v.text()
        if planned:
            try:
                text = service.plan(quants, q, hardware)[0].text() + " (planner)"
            except HerdError as exc:
                text += f" (estimate; planner: {exc.user_message})"
        mark = "*" if i == best else " "
        parts = f" {q.n_parts} parts" if q.n_parts > 1 else ""
        _out(f"{mark} {q.quant:<12} {size_text(q.size):>10}{parts:<9} {text}")


def _best(quants: RepoQuants) -> QuantOption:
    from app.core.hardware.probe import probe_hardware

    judged, best = verdicts(quants, probe_hardware())
    if best is None:
        raise HerdError(
            f"No quant of {quants.repo_id} fits this machine.",
            "Pick one with --quant (see --list), or free memory.",
        )
    option = quants.quants[best]
    _err(f"herd: choosing {option.quant} ({size_text(option.size)}): {judged[best].text()}")
    return option


def _download(service: HubService, request: DownloadRequest) -> int:
    queue = service.queue()
    try:
        queue.add(request)
        queue.update(request.key, JobState.RUNNING)
    except HerdError as exc:  # e.g. the disk is already full: say so before any byte
        return _fail(exc.one_line())
    control = DownloadControl()

    def on_interrupt(*_: object) -> None:
        if control.cancelled:  # a second Ctrl+C: do not wait for the network
            raise KeyboardInterrupt
        control.pause()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    progress = _ProgressLine()
    try:
        for event in service.downloader().run(request, control):
            if isinstance(event, DownloadProgress):
                progress.show(event)
            elif isinstance(event, DownloadDone):
                progress.end()
                _record(queue, request.key, JobState.DONE, path=str(event.path))
                _out(str(event.path))
                return EXIT_OK
            elif isinstance(event, DownloadStopped):
                progress.end()
                _record(queue, request.key, event.state, event.message)
                if event.state is JobState.PAUSED:
                    _err("herd: paused; run the same command again to resume.")
                    return EXIT_INTERRUPTED
                return _fail(one_line(event.message, event.hint))
    except KeyboardInterrupt:
        progress.end()
        _record(queue, request.key, JobState.PAUSED)
        _err("herd: paused; run the same command again to resume.")
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    return _fail("the download ended without a result")


def _record(
    queue: DownloadQueue, key: str, state: JobState, message: str = "", path: str = ""
) -> None:
    """Save how the download ended; a queue that cannot be saved must not hide that.

    The outcome (the file, or why it stopped, e.g. the disk filled up) is what the person
    needs. The queue file keeps its last state, and a RUNNING entry is resumed next time.
    """
    try:
        queue.update(key, state, message, path)
    except HerdError as exc:
        logger.warning("download queue not updated for %s: %s", key, exc.user_message)


class _ProgressLine:
    """One updating line on a terminal; a line every few seconds when stderr is a file."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def show(self, e: DownloadProgress) -> None:
        now = time.monotonic()
        if now - self.last < (0.2 if self.tty else 5.0) and e.file_done < e.file_total:
            return
        self.last = now
        eta = f", {_duration(e.eta_s)} left" if e.eta_s is not None else ""
        speed = f", {e.speed_bps / 1e6:.1f} MB/s" if e.speed_bps else ""
        line = (
            f"{e.phase} {e.filename.rsplit('/', 1)[-1]}: {e.fraction * 100:5.1f}% "
            f"({size_text(e.done)} of {size_text(e.total)}{speed}{eta})"
        )
        sys.stderr.write(f"\r\x1b[K{line}" if self.tty else line + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty and self.last:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"
