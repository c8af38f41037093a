"""What every service needs, built once at startup and handed to handlers through kopf's memo."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from kubeloop.k8s import EventRecorder, Kube
from kubeloop.settings import Settings


class KeyedLocks:
    """One lock per key (e.g. per TrainingRun, per namespace), created on first use.

    kopf already serialises handlers per object, but a TrainingRun is also reconciled from its Job's
    events, and the registry index is shared by every ModelVersion of a namespace.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, threading.Lock] = {}

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield


@dataclass
class Context:
    settings: Settings
    kube: Kube
    events: EventRecorder
    locks: KeyedLocks = field(default_factory=KeyedLocks)

    @classmethod
    def create(cls, settings: Settings) -> Context:
        kube = Kube(timeout=settings.request_timeout, pool_size=settings.max_workers + 4)
        return cls(settings=settings, kube=kube, events=EventRecorder(kube, settings.pod_name))
