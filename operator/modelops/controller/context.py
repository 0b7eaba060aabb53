"""What every handler needs, created once per operator run and passed through Kopf's memo."""

from __future__ import annotations

import threading
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime

from modelops.controller.kube import Kube
from modelops.controller.metrics import OperatorMetrics
from modelops.controller.quiet import Digest
from modelops.controller.settings import OperatorSettings
from modelops.controller.window import WindowStore
from modelops.drift import Profile
from modelops.resources import BuildDefaults


class PolicyMemory:
    """In-memory facts of this operator run: evaluation times and streaks of breaches that were
    not written (``reporting``), each policy's digest (``quiet``), and the profiles and holdout
    metrics already fetched (keyed by model URI; a model directory is immutable)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._evaluated: dict[str, datetime] = {}
        self._profiles: dict[str, Profile] = {}
        self._holdout: dict[str, dict[str, float]] = {}
        self._blocked: set[tuple[str, str]] = set()
        self._digests: dict[str, Digest] = {}
        self._streaks: dict[str, int] = {}

    def evaluated(self, key: str) -> datetime | None:
        with self._lock:
            return self._evaluated.get(key)

    def mark_evaluated(self, key: str, when: datetime) -> None:
        with self._lock:
            self._evaluated[key] = when

    def streak(self, key: str) -> int | None:
        """The policy's consecutive breaches as this run last counted them (status may hold an
        older count: see ``reporting``)."""
        with self._lock:
            return self._streaks.get(key)

    def keep_streak(self, key: str, breaches: int) -> None:
        with self._lock:
            self._streaks[key] = breaches

    def digest(self, key: str) -> Digest | None:
        """What the last parsed resourceVersion of the policy ``key`` said (see ``quiet``)."""
        with self._lock:
            return self._digests.get(key)

    def keep_digest(self, key: str, digest: Digest) -> None:
        with self._lock:
            self._digests[key] = digest

    def profile(self, uri: str) -> Profile | None:
        with self._lock:
            return self._profiles.get(uri)

    def keep_profile(self, uri: str, profile: Profile) -> None:
        with self._lock:
            if len(self._profiles) > 1024:
                self._profiles.clear()
            self._profiles[uri] = profile

    def holdout(self, uri: str) -> dict[str, float] | None:
        """The holdout metrics of the model at ``uri`` (its metadata.json), if read before."""
        with self._lock:
            return self._holdout.get(uri)

    def keep_holdout(self, uri: str, metrics: dict[str, float]) -> None:
        with self._lock:
            if len(self._holdout) > 1024:
                self._holdout.clear()
            self._holdout[uri] = dict(metrics)

    def first_block(self, key: str, candidate: str) -> bool:
        """True the first time this run blocks ``candidate`` of the policy ``key``: a tick whose
        status write failed decides again, but the blocked counter counts a candidate once."""
        with self._lock:
            if (key, candidate) in self._blocked:
                return False
            if len(self._blocked) > 10_000:
                self._blocked.clear()
            self._blocked.add((key, candidate))
            return True

    def forget(self, key: str) -> None:
        with self._lock:
            self._evaluated.pop(key, None)
            self._digests.pop(key, None)
            self._streaks.pop(key, None)
            self._blocked = {blocked for blocked in self._blocked if blocked[0] != key}


@dataclass
class Context:
    """The operator's shared parts: API access, settings, metrics and per-policy memory."""

    kube: Kube
    settings: OperatorSettings
    metrics: OperatorMetrics
    windows: WindowStore = field(default_factory=WindowStore)
    """Previous counter values per policy and pod (in memory: lost on restart, by design)."""
    memory: PolicyMemory = field(default_factory=PolicyMemory)
    """Evaluation times not written to status, and fetched profiles."""
    handler_pool: Executor | None = None
    """Kopf's threads for sync handlers, which the DriftPolicy ticks share (None: asyncio's)."""

    @property
    def defaults(self) -> BuildDefaults:
        return self.settings.build_defaults()
