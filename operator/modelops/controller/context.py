"""What every handler needs, created once per operator run and passed through Kopf's memo."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from modelops.controller.kube import Kube
from modelops.controller.metrics import OperatorMetrics
from modelops.controller.quiet import Digest
from modelops.controller.settings import OperatorSettings
from modelops.controller.window import WindowStore
from modelops.drift import Profile
from modelops.resources import BuildDefaults

T = TypeVar("T")


class HeldByPolicies(Generic[T]):
    """What was fetched from a model URI (a model directory is immutable), kept while a policy
    uses that URI and shared by the policies that do; not thread-safe (``PolicyMemory`` locks).

    Bounded by the policies, not by a count: a fixed bound below the policies in use (it was
    1,024) was cleared and refilled over and over at 2,000 policies, so nearly every
    evaluation fetched and parsed its model's profile again."""

    def __init__(self) -> None:
        self._values: dict[str, T] = {}
        self._uri_of: dict[str, str] = {}
        self._users: Counter[str] = Counter()

    def get(self, key: str, uri: str) -> T | None:
        """The value of ``uri``, if fetched; the policy ``key`` now holds it."""
        value = self._values.get(uri)
        if value is not None:
            self._hold(key, uri)
        return value

    def put(self, key: str, uri: str, value: T) -> None:
        """Keep ``value`` of ``uri`` for the policy ``key`` (and any other using ``uri``)."""
        self._values[uri] = value
        self._hold(key, uri)

    def release(self, key: str) -> None:
        """The policy ``key`` is gone: drop what only it held."""
        uri = self._uri_of.pop(key, None)
        if uri is not None:
            self._unuse(uri)

    def __len__(self) -> int:
        return len(self._values)

    def _hold(self, key: str, uri: str) -> None:
        before = self._uri_of.get(key)
        if before == uri:
            return
        self._uri_of[key] = uri
        self._users[uri] += 1
        if before is not None:
            self._unuse(before)  # the policy's model changed

    def _unuse(self, uri: str) -> None:
        self._users[uri] -= 1
        if self._users[uri] <= 0:
            del self._users[uri]
            self._values.pop(uri, None)


class PolicyMemory:
    """In-memory facts of this operator run: evaluation times and streaks of breaches that were
    not written (``reporting``), each policy's digest (``quiet``), and the profiles and holdout
    metrics already fetched (keyed by model URI; a model directory is immutable)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._evaluated: dict[str, datetime] = {}
        self._profiles: HeldByPolicies[Profile] = HeldByPolicies()
        self._holdout: HeldByPolicies[dict[str, float]] = HeldByPolicies()
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

    def profile(self, key: str, uri: str) -> Profile | None:
        """The profile of the model at ``uri`` that the policy ``key`` serves, if fetched."""
        with self._lock:
            return self._profiles.get(key, uri)

    def keep_profile(self, key: str, uri: str, profile: Profile) -> None:
        with self._lock:
            self._profiles.put(key, uri, profile)

    def holdout(self, key: str, uri: str) -> dict[str, float] | None:
        """The holdout metrics of the model at ``uri`` (its metadata.json), if read before."""
        with self._lock:
            return self._holdout.get(key, uri)

    def keep_holdout(self, key: str, uri: str, metrics: dict[str, float]) -> None:
        with self._lock:
            self._holdout.put(key, uri, dict(metrics))

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
            self._profiles.release(key)
            self._holdout.release(key)
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
