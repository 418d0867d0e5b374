"""One object the command line and the window share: client, downloader, queue and token."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.core.hardware.probe import Hardware
from app.core.hub.catalog import (
    QuantOption,
    RepoQuants,
    cached_listing,
    group_quants,
    repo_quants,
)
from app.core.hub.client import HubClient, HubConfig
from app.core.hub.download import Downloader, FreeSpace, free_space
from app.core.hub.errors import HubOfflineError
from app.core.hub.jobs import DownloadQueue
from app.core.hub.remote_plan import plan_quant
from app.core.hub.token import TokenStore
from app.core.hub.verdict import Verdict, judge, recommend
from app.core.paths import AppPaths
from app.core.plan.planner import Plan


@dataclass
class HubService:
    """The Hub as Herd uses it, configured from ``environ`` (``HF_ENDPOINT``, proxies).

    ``endpoint`` overrides ``HF_ENDPOINT``; ``token`` overrides the stored one (tests).
    """

    paths: AppPaths
    environ: Mapping[str, str] = field(default_factory=dict)
    offline: bool = False
    endpoint: str | None = None
    token: str | bool | None = None
    free_space_fn: FreeSpace = free_space
    tokens: TokenStore = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = TokenStore(self.paths.hub_token_file)

    def config(self) -> HubConfig:
        """The current configuration (re-read after a token is saved)."""
        token = self.token if self.token is not None else self.tokens.get()
        base = HubConfig.from_env(self.environ, offline=self.offline)
        return HubConfig(
            endpoint=(self.endpoint or base.endpoint).rstrip("/"),
            token=token,
            offline=base.offline,
        )

    def client(self) -> HubClient:
        """A client with the current configuration."""
        return HubClient(self.config())

    def downloader(self) -> Downloader:
        """A downloader into the Hugging Face cache, with partial files in ``paths.downloads``.

        A quant already complete in Herd's old download folder is not downloaded again.
        """
        return Downloader(
            self.client(),
            self.paths.downloads,
            self.paths.hub_cache,
            free_space_fn=self.free_space_fn,
            also_in=self._old_caches(),
        )

    def _old_caches(self) -> tuple[Path, ...]:
        old = self.paths.legacy_hub_cache
        same = os.path.realpath(old) == os.path.realpath(self.paths.hub_cache)
        return () if same or not old.is_dir() else (old,)

    def queue(self) -> DownloadQueue:
        """The saved download queue."""
        return DownloadQueue.load(self.paths.downloads)

    def quants(self, repo_id: str) -> RepoQuants:
        """A repository's quants (offline: from the cache, else from Herd's old folder)."""
        try:
            return repo_quants(self.client(), self.paths.hub_cache, repo_id)
        except HubOfflineError:
            for old in self._old_caches():
                if (listing := cached_listing(old, repo_id)) is not None:
                    return group_quants(listing, from_cache=True)
            raise

    def plan(
        self, quants: RepoQuants, option: QuantOption, hardware: Hardware
    ) -> tuple[Verdict, Plan]:
        """The planner's verdict for ``option``, from its headers (fetched once, then kept)."""
        return plan_quant(self.client(), self.paths.hub_headers, quants.commit, option, hardware)

    @property
    def cache(self) -> Path:
        """The Hugging Face cache Herd writes (``HF_HUB_CACHE``, ``HF_HOME``, or the default)."""
        return self.paths.hub_cache


def verdicts(quants: RepoQuants, hardware: Hardware) -> tuple[list[Verdict], int | None]:
    """Each quant's verdict on ``hardware``, and the index of the one to recommend."""
    judged = [judge(q.size, f"{quants.repo_id} {q.first_file}", hardware) for q in quants.quants]
    sizes = [(q.size, v) for q, v in zip(quants.quants, judged, strict=True)]
    return judged, recommend(sizes, [q.quant for q in quants.quants])
