"""The planner's verdict for a quant before it is downloaded, from its GGUF headers alone.

A GGUF's header (metadata, tokenizer, tensor inventory) is its first few MB. Herd fetches
each part's header with an HTTP Range request into a sparse file of the part's full size,
so :func:`~app.core.gguf.info.read_gguf` sees the real layout and :func:`make_plan` gives the
same plan it will give for the downloaded file. Headers are kept under ``folder`` (a few
MB per quant), so asking again costs no network. Where sparse files do not exist
(Windows), the caller keeps the size-based estimate of :mod:`app.core.hub.verdict`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath

from app.core.errors import ModelFileError
from app.core.gguf.info import read_gguf
from app.core.gguf.reader import read_part
from app.core.hardware.probe import Hardware
from app.core.hub import cache as hub_cache
from app.core.hub.catalog import QuantOption
from app.core.hub.client import HubClient, RemoteFile
from app.core.hub.errors import HubError
from app.core.hub.verdict import Fit, Verdict
from app.core.plan.planner import Plan, Wishes, make_plan

logger = logging.getLogger(__name__)

FIRST_READ = 1 << 20  # a split part's header; part 1 (the tokenizer) needs a few reads more
MAX_HEADER = 128 << 20


def headers_supported() -> bool:
    """Whether header-only sparse files work here (not on Windows)."""
    return os.name != "nt"


def fetch_header(
    client: HubClient, repo_id: str, revision: str, f: RemoteFile, dest: Path, index: int
) -> int:
    """Write ``f``'s header into ``dest`` (sparse, full size); returns the bytes fetched.

    Raises:
        HubError: the Hub failed, or the file is not a GGUF Herd can read.
    """
    if dest.exists() and dest.stat().st_size == f.size:
        try:
            read_part(dest, index)
            return 0  # cached
        except ModelFileError:
            pass
    where = client.locate(repo_id, f.name, revision)
    dest.parent.mkdir(parents=True, exist_ok=True)
    n, data = FIRST_READ, b""
    while True:
        n = min(n, f.size)
        if n > len(data):  # only the bytes not fetched yet: a Scout header is about 13 MB
            data += client.read_range(where, len(data), n - 1)
        with dest.open("wb") as out:
            out.write(data)
            out.truncate(f.size)
        try:
            head = read_part(dest, index)
            if head.data_offset <= len(data):
                return len(data)
        except ModelFileError as exc:
            if n >= f.size or n >= MAX_HEADER or len(data) < n:  # the file ended early
                dest.unlink(missing_ok=True)
                raise HubError(
                    f"{f.name} does not look like a GGUF model: {exc.user_message}",
                    "Choose another quant or repository.",
                ) from exc
        n *= 4


def plan_quant(
    client: HubClient,
    folder: Path,
    commit: str,
    option: QuantOption,
    hardware: Hardware,
    wishes: Wishes | None = None,
) -> tuple[Verdict, Plan]:
    """The planner's verdict and plan for ``option`` on ``hardware``, from its headers.

    Raises:
        HubError: headers unavailable (no sparse files, the Hub failed, not a GGUF).
        HerdError: the planner refused the model.
    """
    if not headers_supported():
        raise HubError("The planner needs sparse files, which this system lacks.", "")
    where = hub_cache.repo_dir(folder, option.repo_id) / commit
    fetched = 0
    first: Path | None = None
    for i, f in enumerate(option.files):
        dest = where / PurePosixPath(f.name).name
        fetched += fetch_header(client, option.repo_id, commit, f, dest, i)
        first = first or dest
    assert first is not None
    logger.info("planned %s %s from %d header bytes", option.repo_id, option.quant, fetched)
    plan = make_plan(read_gguf(first), hardware, wishes)
    return verdict_from_plan(plan, hardware), plan


def verdict_from_plan(plan: Plan, hardware: Hardware) -> Verdict:
    """A plan in the quant picker's words."""
    if not plan.fits:
        return Verdict(Fit.NO_FIT, 0.0, planned=True)
    if not any(d.kind == "gpu" for d in plan.devices):
        fit = Fit.CPU_ONLY
    elif plan.cpu_expert_layers or plan.disk_bytes:
        fit = Fit.EXPERTS_CPU
    else:
        fit = Fit.ALL_GPU
    return Verdict(fit, plan.predicted_decode_tok_s, planned=True, n_ctx=plan.n_ctx)
