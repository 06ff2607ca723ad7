"""Scale-out on Ray: Ray actors hold the judge (or a generation provider) and make the calls; this process
keeps the store.

Imported only when a run is given a Ray address (``EngineSettings.ray``, ``--ray``): pasture works without
Ray installed, and importing pasture starts nothing.

How a run goes (docs/annotate.md, "Scale-out on Ray"):

* the driver (the process that runs ``annotate``/``evaluate``/``simulate``/``generate``) connects to the
  cluster, pickles the judge once and starts ``ray_workers`` actors (:class:`PastureWorker`), each of
  which unpickles its own copy: one judge, one provider and one HTTP client per actor, made on the actor's
  own event loop at its first call. The actors serve the process's later runs with the same judge too
  (:data:`_ACTORS`);
* the engine runs unchanged in the driver: it reads the store, claims keys, applies quotas, retries and
  timeouts, and writes every judgment as it completes. Only the call itself goes to an actor, through
  :class:`RemoteJudge`, which has the judge's interface;
* a call goes to the live actor with the fewest calls in flight, at most ``ray_worker_concurrency`` each;
* an actor that dies (its process killed, its node lost) fails only its calls in flight: each is a
  transient failure to the engine, retried with backoff on another actor (Ray restarts the dead one, and
  it takes calls again once it answers a ping). Nothing stored is lost and no stored judgment is asked
  again, because only the driver decides what to call and it skips every key stored 'ok'.

Why the store stays in the driver rather than on the workers: SQLite is one file, and Ray nodes do not
share a file system (SQLite's locking over a network file system is unreliable). Keeping claims and
writes in one process keeps the store's guarantees exactly as they are without Ray: the workers need no
access to it, and several drivers on one machine still share a store through the existing claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pasture.errors import InputError, PastureError

try:
    import ray
    from ray import cloudpickle
    from ray.exceptions import ActorDiedError, RayActorError, RayError, RayTaskError
except ImportError:  # a run was given a Ray address on an install without the extra
    raise InputError("running on Ray needs Ray installed: pip install 'pasture[ray]'", param="ray") from None

from pasture.providers.base import ChatRequest, Completion, PermanentError, TransientError

if TYPE_CHECKING:
    from pasture.annotate.engine import EngineSettings

__all__ = ["PastureWorker", "RemoteJudge", "RemoteProvider", "WorkerPool", "connect", "shutdown"]

STARTUP_TIMEOUT_S = 300.0
"""How long the workers may take to start (a cluster may have to start Python processes on many nodes)."""


_ACTORS: dict[tuple[str, int, int], list[Any]] = {}
"""Workers kept between the runs of this process (the rounds of a budget-aware evaluation, the labeling
passes of a simulation), by (digest of the pickled judge or provider, workers, calls per worker), so a
worker's start-up (a Python process importing pasture: seconds) is paid once per process. Filled only by
runs given a Ray address; the actors end with this process (Ray ties them to their owner) or :func:`shutdown`.
"""


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` ('auto' or HOST:PORT) as a driver, unless this process already has.

    A process that joined a cluster (or called ``ray.init`` itself, e.g. with a runtime environment) keeps
    its connection; asking it for another cluster is an error, since a process joins one cluster only.
    """
    _check_reachable(address)
    if ray.is_initialized():
        connected = ray.get_runtime_context().gcs_address
        if not _same_cluster(address, connected):
            raise InputError(
                f"this process has joined the Ray cluster at {connected} and cannot join {address!r} too; "
                "give that address, or call ray.shutdown() first",
                param="ray",
            )
        return
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError(
            f"cannot join the Ray cluster at {address!r} ({_last_line(exc)}); start one with `ray start --head` "
            "and give its address (HOST:PORT), or 'auto' on one of its nodes",
            param="ray",
        ) from None


def _same_cluster(requested: str, connected: str) -> bool:
    """Whether HOST:PORT ``requested`` names the cluster whose GCS is at ``connected`` ('auto' names any).

    Ray records a head started on 127.0.0.1 under the machine's own address, so a loopback address and
    this machine's address are the same host here.
    """
    host, sep, port = requested.rpartition(":")
    if not sep or not port.isdigit():
        return True  # 'auto' or a form only Ray reads: the cluster this process has joined
    other_host, _, other_port = connected.rpartition(":")
    if port != other_port:
        return False
    try:
        mine, theirs = (socket.gethostbyname(h.strip("[]")) for h in (host, other_host))
    except OSError:
        return False
    here = {"127.0.0.1", ray.util.get_node_ip_address()}
    mine, theirs = ("127.0.0.1" if ip.startswith("127.") else ip for ip in (mine, theirs))
    return mine == theirs or (mine in here and theirs in here)


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at HOST:PORT: Ray itself retries a dead address for minutes."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in address:
        return  # 'auto' (Ray finds the cluster or says there is none) or another form Ray reads
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as exc:
        raise InputError(
            f"no Ray cluster answers at {address!r} ({exc.strerror or exc}); start one with `ray start --head` "
            "and give the address it prints (HOST:PORT), or 'auto' on one of its nodes",
            param="ray",
        ) from None


def _last_line(exc: BaseException) -> str:
    """The informative line of a Ray error: its text ends with the cause after a long traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


class PastureWorker:
    """The Ray actor: one judge or provider, unpickled in its own process and used on its own event loop.

    ``call`` returns failures as data rather than raising them: a :class:`TransientError`'s Retry-After
    would not survive Ray's exception wrapping, and the driver must tell call failures (retried by the
    engine) from a dead actor (a lost call, retried elsewhere). Any other exception is a bug of the judge
    and reaches the driver as Ray's task error.
    """

    def __init__(self, payload: bytes) -> None:
        self._target = cloudpickle.loads(payload)

    async def ping(self) -> int:
        """The actor's process id, once it is up (the driver's readiness and recovery probe)."""
        return os.getpid()

    async def call(self, method: str, argument: Any) -> tuple[str, Any, float | None]:
        try:
            return "ok", await getattr(self._target, method)(argument), None
        except TransientError as exc:
            return "transient", str(exc), exc.retry_after
        except PermanentError as exc:
            return "permanent", str(exc), None


@dataclass
class _Worker:
    index: int
    handle: Any
    inflight: int = 0
    up: bool = True  # answers calls; False from a lost call until it answers a ping again
    dead: bool = False  # will not come back (Ray gave up restarting it)


class WorkerPool:
    """``workers`` :class:`PastureWorker` actors holding one pickled object, and the dispatch of calls to them.

    Made inside the event loop that uses it (:meth:`start`), closed by :meth:`close` (which kills the
    actors; Ray would also kill them when this process exits, as it owns them).
    """

    def __init__(self, handles: list[Any], per_worker: int, label: str) -> None:
        self.workers = [_Worker(i, h) for i, h in enumerate(handles)]
        self.per_worker = per_worker
        self.label = label
        self._changed = asyncio.Event()
        self._probes: set[asyncio.Task[None]] = set()
        self._last_loss = ""

    @classmethod
    async def start(
        cls, target: Any, *, address: str, workers: int | None, per_worker: int | None, concurrency: int, label: str
    ) -> WorkerPool:
        """Connect, start the actors (or reuse this process's, :data:`_ACTORS`) and wait until each answers.

        ``workers`` None: one per CPU of the cluster; ``per_worker`` None: ``concurrency`` shared evenly
        among the workers (at least one call each). A worker that cannot start is an error here, not a
        failed judgment.
        """
        connect(address)
        try:
            payload = cloudpickle.dumps(target)
        except Exception as exc:  # any pickling failure: a lock, an open model, a socket
            raise InputError(
                f"{label} cannot be sent to Ray workers ({type(exc).__name__}: {exc}); give a judge or "
                "provider that is built from plain data, e.g. an OpenAI-compatible server",
                param="ray",
            ) from None
        n = workers if workers is not None else max(1, int(ray.cluster_resources().get("CPU", 1)))
        per = per_worker if per_worker is not None else max(1, math.ceil(concurrency / n))
        key = (hashlib.sha256(payload).hexdigest(), n, per)
        handles = _ACTORS.pop(key, None)
        reused = handles is not None
        if handles is None:
            actor = ray.remote(PastureWorker).options(
                num_cpus=0,  # they wait on I/O; reserving CPUs would let concurrent pools (a jury's) deadlock
                max_concurrency=per + 1,  # one slot beyond the calls for the recovery ping
                max_restarts=-1,  # a killed actor comes back (a new process, a new client)
                max_task_retries=0,  # a lost call is the engine's to retry and count, never Ray's
                scheduling_strategy="SPREAD",  # across nodes
            )
            handles = [actor.remote(payload) for _ in range(n)]  # a small payload travels inline
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_S):
                await asyncio.gather(*(h.ping.remote() for h in handles))
        except RayActorError as exc:
            _kill(handles)
            if reused:  # a kept worker is gone for good: start afresh
                return await cls.start(
                    target, address=address, workers=n, per_worker=per, concurrency=concurrency, label=label
                )
            raise PastureError(
                f"the Ray workers for {label} could not start: {_last_line(exc)} (pasture, and what the judge "
                "needs, must be installed on every node of the cluster)"
            ) from None
        except TimeoutError:
            _kill(handles)
            raise PastureError(
                f"the Ray workers for {label} did not start within {STARTUP_TIMEOUT_S:g} s (is the cluster busy?)"
            ) from None
        _ACTORS[key] = handles
        return cls(handles, per, label)

    # -- dispatch ----------------------------------------------------------------------------------------------
    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _acquire(self) -> _Worker:
        while True:
            live = [w for w in self.workers if not w.dead]
            if not live:
                raise PermanentError(f"every Ray worker of {self.label} is gone; last loss: {self._last_loss}")
            free = [w for w in live if w.up and w.inflight < self.per_worker]
            if free:
                worker = min(free, key=lambda w: w.inflight)
                worker.inflight += 1
                return worker
            await self._changed.wait()

    def _release(self, worker: _Worker) -> None:
        worker.inflight -= 1
        self._notify()

    async def call(self, method: str, argument: Any) -> Any:
        """``await target.method(argument)`` on a worker; raises TransientError/PermanentError as the target did.

        A worker lost during the call raises :class:`TransientError` (the engine retries the call, and the
        retry goes to another worker); the lost worker takes calls again once it answers a ping.
        """
        worker = await self._acquire()
        try:
            ref = worker.handle.call.remote(method, argument)
            try:
                tag, value, retry_after = await ref
            except asyncio.CancelledError:  # the engine's timeout: stop the call on the worker too
                with contextlib.suppress(Exception):  # best effort: the worker may be gone already
                    ray.cancel(ref)
                raise
        except RayActorError as exc:
            self._lost(worker, exc)
            raise TransientError(f"Ray worker {worker.index} was lost during the call: {_last_line(exc)}") from None
        except RayTaskError:
            raise  # the judge itself raised something else: a bug, which stops the run as without Ray
        except RayError as exc:  # the cluster lost the call otherwise (e.g. the node holding its result)
            raise TransientError(f"Ray lost the call: {_last_line(exc)}") from None
        finally:
            self._release(worker)
        if tag == "ok":
            return value
        if tag == "transient":
            raise TransientError(value, retry_after=retry_after)
        raise PermanentError(value)

    def _lost(self, worker: _Worker, exc: RayActorError) -> None:
        self._last_loss = f"worker {worker.index}: {_last_line(exc)}"
        if worker.up:  # the first lost call of this worker starts its probe
            worker.up = False
            probe = asyncio.ensure_future(self._probe(worker))
            self._probes.add(probe)
            probe.add_done_callback(self._probes.discard)
        self._notify()

    async def _probe(self, worker: _Worker) -> None:
        """Ping a lost worker until Ray has restarted it (then it takes calls again) or given it up."""
        delay = 0.05
        while True:
            try:
                await worker.handle.ping.remote()
            except ActorDiedError as exc:
                worker.dead = True  # Ray gave up on it (e.g. its constructor now fails)
                self._last_loss = f"worker {worker.index}: {_last_line(exc)}"
                self._notify()
                return
            except RayActorError:  # still restarting
                await asyncio.sleep(delay)
                delay = min(2 * delay, 2.0)
                continue
            worker.up = True
            self._notify()
            return

    # -- end ---------------------------------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop the probes; the actors stay for this process's next run (:func:`shutdown` ends them)."""
        for probe in list(self._probes):
            probe.cancel()
        await asyncio.gather(*self._probes, return_exceptions=True)


def _kill(handles: list[Any]) -> None:
    for handle in handles:
        with contextlib.suppress(Exception):  # already gone
            ray.kill(handle, no_restart=True)


def shutdown() -> None:
    """End the Ray workers this process keeps between runs (:data:`_ACTORS`); the next run starts new ones."""
    for handles in _ACTORS.values():
        _kill(handles)
    _ACTORS.clear()


class RemoteJudge:
    """A judge whose calls run on Ray workers: the engine's view of a judge (pairwise or single-response).

    Name, fingerprint, price and token estimates are the local judge's (no call needed); ``judge`` and
    ``judge_response`` go to a worker.
    """

    def __init__(self, judge: Any, pool: WorkerPool) -> None:
        self._judge = judge
        self.pool = pool
        self.name: str = judge.name

    @classmethod
    async def start(cls, judge: Any, settings: EngineSettings) -> RemoteJudge:
        """Workers for ``judge`` under ``settings`` (an EngineSettings with ``ray`` set)."""
        judge.fingerprint  # noqa: B018  (computed here once, e.g. a weights digest, and shipped with the judge)
        assert settings.ray is not None
        pool = await WorkerPool.start(
            judge,
            address=settings.ray,
            workers=settings.ray_workers,
            per_worker=settings.ray_worker_concurrency,
            concurrency=settings.concurrency,
            label=f"judge {judge.name!r}",
        )
        return cls(judge, pool)

    @property
    def fingerprint(self) -> Any:
        return self._judge.fingerprint

    @property
    def reads(self) -> frozenset[str]:
        return frozenset(getattr(self._judge, "reads", frozenset()))

    def estimate_tokens(self, request: Any) -> tuple[int, int]:
        result: tuple[int, int] = self._judge.estimate_tokens(request)
        return result

    def price_per_token(self) -> tuple[float, float] | None:
        result: tuple[float, float] | None = self._judge.price_per_token()
        return result

    async def judge(self, request: Any) -> Any:
        return await self.pool.call("judge", request)

    async def judge_response(self, request: Any) -> Any:
        return await self.pool.call("judge_response", request)

    async def close(self) -> None:
        await self.pool.close()


class RemoteProvider:
    """A provider whose completions run on Ray workers (generation on a cluster): same name, model and identity."""

    def __init__(self, provider: Any, pool: WorkerPool) -> None:
        self._provider = provider
        self.pool = pool
        self.name: str = provider.name
        self.model: str = provider.model

    @classmethod
    async def start(
        cls, provider: Any, *, address: str, workers: int | None, per_worker: int | None, concurrency: int
    ) -> RemoteProvider:
        pool = await WorkerPool.start(
            provider,
            address=address,
            workers=workers,
            per_worker=per_worker,
            concurrency=concurrency,
            label=f"provider {provider.name}:{provider.model}",
        )
        return cls(provider, pool)

    def identity(self) -> dict[str, Any]:
        result: dict[str, Any] = self._provider.identity()
        return result

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # price() and other optional local methods of the provider (looked up only when not defined here)
        if name.startswith("_"):
            raise AttributeError(name)
        attribute: Callable[..., Any] = getattr(self._provider, name)
        return attribute

    async def complete(self, request: ChatRequest) -> Completion:
        completion: Completion = await self.pool.call("complete", request)
        return completion

    async def close(self) -> None:
        await self.pool.close()
