"""State for handlers: keys and values that outlive the process, one namespace per handler module.

A module reaches its own keys as ``component.store`` (in ``setup()`` and in
``request.component``); the namespace is the module's name, so two modules
never see each other's keys. Every call returns a Deferred (awaitable in an
``async def`` responder). A value is ``bytes`` or JSON-serializable data (a
tuple comes back as a list); ``None`` stands for "absent" everywhere, so it
cannot be stored. A value the store has confirmed (the Deferred fired) is on
disk: a reply sent after ``await store.set(...)`` survives a crash.

The backends: ``MemoryStore`` here (the test kit's), SQLite and PostgreSQL in
component/store_sql.py.
They are held to one behaviour by tests that run the same cases on all three
(tests/integration/test_store_backends.py).

Expiry is measured on the component's clock (``IComponent.clock``), so a test
drives it with ``task.Clock``; instances sharing PostgreSQL on several machines
should keep their clocks in step (NTP), as any expiry across machines needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from component.errors import StanzaError
from component.interfaces import IStore

MAX_KEY_CHARS = 512
"""The longest key, in characters."""
MAX_VALUE_BYTES = 262_144
"""The largest value, in bytes as stored: the bytes themselves, or the JSON text in UTF-8 (256 KiB)."""
PURGE_INTERVAL = 600.0
"""Seconds between deletions of expired entries; until then an expired entry is only invisible."""

_T = TypeVar("_T")
_BYTES = b"b"  # the first byte of a stored value says what follows: raw bytes,
_JSON = b"j"  # or JSON text


class StoreBackend(Protocol):
    """Where ``Store`` keeps the stored forms of values: ``MemoryStore`` here, the SQL backends in component/store_sql.py.

    Keys and values come checked and encoded; ``now`` and ``expires`` are
    seconds on the component's clock. A backend may also have ``connect()``
    (reach a shared database at start) and ``problem()`` (why it will fail, if
    that can be told before using it).
    """

    description: str
    """What the log calls it: the kind of store and where it is."""

    def read(self, namespace: str, key: str, now: float) -> Deferred[bytes | None]: ...

    def write(self, namespace: str, key: str, data: bytes, expires: float | None) -> Deferred[None]: ...

    def remove(self, namespace: str, key: str, now: float) -> Deferred[bool]: ...

    def swap(
        self, namespace: str, key: str, expected: bytes | None, data: bytes, expires: float | None, now: float
    ) -> Deferred[bool]: ...

    def scan(
        self, namespace: str, prefix: str, limit: int | None, values: bool, now: float
    ) -> Deferred[list[tuple[str, bytes | None]]]: ...

    def purge(self, now: float) -> Deferred[int]: ...

    def close(self) -> Deferred[None]: ...


class StoreUnavailable(StanzaError):
    """The store cannot be reached or did not answer in time.

    A responder that lets it escape answers ``internal-server-error`` of type
    ``wait`` (try again later), without a traceback in the log: the store logs
    once when it becomes unavailable and once when it is back.
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__("internal-server-error", "wait", "The service's storage is unavailable; try again later")
        self.reason = reason

    def __str__(self) -> str:
        return f"store unavailable: {self.reason}" if self.reason else "store unavailable"


def encode(value: Any) -> bytes:
    """The stored form of ``value``: equal values encode equally, which compare-and-set relies on."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = _BYTES + bytes(value)
    elif value is None:
        raise ValueError("None stands for an absent key and cannot be stored; use delete()")
    else:
        try:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"a stored value must be bytes or JSON-serializable data: {e}") from None
        data = _JSON + text.encode("utf-8", "surrogatepass")
    if len(data) - 1 > MAX_VALUE_BYTES:
        raise ValueError(f"a stored value may take at most {MAX_VALUE_BYTES} bytes, this one takes {len(data) - 1}")
    return data


def decode(data: bytes | memoryview | None) -> Any:
    """The value ``encode`` stored as ``data`` (``None`` for an absent key)."""
    if data is None:
        return None
    data = bytes(data)
    if data[:1] == _BYTES:
        return data[1:]
    return json.loads(data[1:].decode("utf-8", "surrogatepass"))


def check_key(key: Any) -> str:
    """``key`` when it can be stored (a non-empty string, without NUL, of at most ``MAX_KEY_CHARS``); else ``ValueError``."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"a key must be a non-empty string, not {key!r}")
    if len(key) > MAX_KEY_CHARS:
        raise ValueError(f"a key may have at most {MAX_KEY_CHARS} characters, this one has {len(key)}")
    if "\x00" in key:
        raise ValueError("a key cannot contain NUL")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a key must be valid Unicode text (no lone surrogates)") from None
    return key


def _ttl(ttl: float | None) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds or None, not {ttl!r}")
    return float(ttl)


@implementer(IStore)
class ModuleStore:
    """One handler module's keys: ``component.store``. See ``IStore`` for each method."""

    __slots__ = ("_backend", "_clock", "namespace")

    def __init__(self, backend: StoreBackend, namespace: str, clock: IReactorTime) -> None:
        self._backend = backend
        self.namespace = namespace
        self._clock = clock

    def get(self, key: str, default: Any = None) -> Deferred[Any]:
        try:
            check_key(key)
        except ValueError:
            return fail()
        d = self._backend.read(self.namespace, key, self._clock.seconds())
        return d.addCallback(lambda data: default if data is None else decode(data))

    def set(self, key: str, value: Any, ttl: float | None = None) -> Deferred[None]:
        try:
            check_key(key)
            data, ttl = encode(value), _ttl(ttl)
        except ValueError:
            return fail()
        expires = None if ttl is None else self._clock.seconds() + ttl
        return self._backend.write(self.namespace, key, data, expires)

    def delete(self, key: str) -> Deferred[bool]:
        try:
            check_key(key)
        except ValueError:
            return fail()
        return self._backend.remove(self.namespace, key, self._clock.seconds())

    def compare_and_set(self, key: str, expected: Any, value: Any, ttl: float | None = None) -> Deferred[bool]:
        try:
            check_key(key)
            old = None if expected is None else encode(expected)
            data, ttl = encode(value), _ttl(ttl)
        except ValueError:
            return fail()
        now = self._clock.seconds()
        return self._backend.swap(self.namespace, key, old, data, None if ttl is None else now + ttl, now)

    def keys(self, prefix: str = "", limit: int | None = None) -> Deferred[list[str]]:
        return self._scan(prefix, limit, False).addCallback(lambda rows: [key for key, _ in rows])

    def items(self, prefix: str = "", limit: int | None = None) -> Deferred[list[tuple[str, Any]]]:
        return self._scan(prefix, limit, True).addCallback(lambda rows: [(key, decode(data)) for key, data in rows])

    def _scan(self, prefix: str, limit: int | None, values: bool) -> Deferred[list[tuple[str, bytes | None]]]:
        try:
            if prefix:
                check_key(prefix)
            elif not isinstance(prefix, str):
                raise ValueError(f"a prefix must be a string, not {prefix!r}")
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                raise ValueError(f"limit must be a positive integer or None, not {limit!r}")
        except ValueError:
            return fail()
        return self._backend.scan(self.namespace, prefix, limit, values, self._clock.seconds())

    def __repr__(self) -> str:
        return f"<store of {self.namespace!r} in {self._backend!r}>"


class Store:
    """The component's store: one backend, a ``ModuleStore`` per module, and the purge of expired entries."""

    log = Logger()

    def __init__(self, backend: StoreBackend, clock: IReactorTime, purge_interval: float = PURGE_INTERVAL) -> None:
        self.backend = backend
        self.clock = clock
        self._purge = LoopingCall(self._purge_expired)
        self._purge.clock = clock
        self._purge_interval = purge_interval

    def for_module(self, name: str) -> ModuleStore:
        return ModuleStore(self.backend, name, self.clock)

    def start(self) -> None:
        """Say which store serves, reach a shared one at once, and delete expired entries every ``purge_interval``.

        A database server is reached at start, so that an operator reads at
        once whether it can be (one warning if not; requests are not held up
        by it). A SQLite file is left alone until a module uses it.
        """
        self.log.info("Handlers' state is kept in {store}", store=self.backend.description)
        problem = getattr(self.backend, "problem", lambda: None)()
        if problem is not None:
            self.log.warn(
                "The store ({store}) will fail when a handler uses it: {problem}; set [store] url",
                store=self.backend.description,
                problem=problem,
            )
        connect = getattr(self.backend, "connect", None)
        if connect is not None:
            connect().addErrback(self._not_connected)
        if not self._purge.running:
            self._purge.start(self._purge_interval, now=False)

    def _not_connected(self, failure: Failure) -> None:
        """The backend logged an unavailable store already; anything else is worth its traceback, once."""
        if not failure.check(StoreUnavailable):
            self.log.failure("The store could not be reached at start", failure, level=LogLevel.error)

    def _purge_expired(self) -> Deferred[int | None]:
        d = self.backend.purge(self.clock.seconds())
        return d.addErrback(lambda failure: failure.trap(StoreUnavailable))

    def close(self) -> Deferred[None]:
        """Stop the purge and close the backend (its threads and connections)."""
        if self._purge.running:
            self._purge.stop()
        return self.backend.close()


def open_backend(url: str, reactor: Any, timeout: float = 5.0, connections: int = 4) -> StoreBackend:
    """The backend of ``url`` (``sqlite:////ABSOLUTE/PATH`` or ``postgresql://...``); it connects on first use."""
    from component.store_sql import PostgreSQLBackend, SQLiteBackend

    if url.startswith("sqlite:///"):
        return SQLiteBackend(Path(url.removeprefix("sqlite:///")), reactor, timeout)
    return PostgreSQLBackend(url, reactor, timeout, connections)


class MemoryStore:
    """A backend in a dict: what the test kit gives handlers, with the behaviour of the SQL backends.

    Each call's result is already there when it returns (a fired Deferred),
    as a test wants. ``fail_with`` makes every call fail with that exception,
    which is how a handler's test shows what its users get when the real store
    is down (``StoreUnavailable``).
    """

    description = "memory (lost when the process ends)"

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], tuple[bytes, float | None]] = {}
        self.fail_with: Exception | None = None

    def _live(self, namespace: str, key: str, now: float) -> bytes | None:
        entry = self.entries.get((namespace, key))
        if entry is None or (entry[1] is not None and entry[1] <= now):
            return None
        return entry[0]

    def _answer(self, compute: Callable[[], _T]) -> Deferred[_T]:
        if self.fail_with is not None:
            return fail(self.fail_with)
        return succeed(compute())

    def read(self, namespace: str, key: str, now: float) -> Deferred[bytes | None]:
        return self._answer(lambda: self._live(namespace, key, now))

    def write(self, namespace: str, key: str, data: bytes, expires: float | None) -> Deferred[None]:
        return self._answer(lambda: self.entries.__setitem__((namespace, key), (data, expires)))

    def remove(self, namespace: str, key: str, now: float) -> Deferred[bool]:
        def remove() -> bool:
            live = self._live(namespace, key, now) is not None
            self.entries.pop((namespace, key), None)
            return live

        return self._answer(remove)

    def swap(
        self, namespace: str, key: str, expected: bytes | None, data: bytes, expires: float | None, now: float
    ) -> Deferred[bool]:
        def swap() -> bool:
            if self._live(namespace, key, now) != expected:
                return False
            self.entries[namespace, key] = (data, expires)
            return True

        return self._answer(swap)

    def scan(
        self, namespace: str, prefix: str, limit: int | None, values: bool, now: float
    ) -> Deferred[list[tuple[str, bytes | None]]]:
        def scan() -> list[tuple[str, bytes | None]]:
            rows: list[tuple[str, bytes | None]] = []
            for (space, key), (data, expires) in self.entries.items():
                if space == namespace and key.startswith(prefix) and (expires is None or expires > now):
                    rows.append((key, data if values else None))
            rows.sort(key=lambda row: row[0])
            return rows if limit is None else rows[:limit]

        return self._answer(scan)

    def purge(self, now: float) -> Deferred[int]:
        def purge() -> int:
            expired = [name for name, (_, expires) in self.entries.items() if expires is not None and expires <= now]
            for name in expired:
                del self.entries[name]
            return len(expired)

        return self._answer(purge)

    def close(self) -> Deferred[None]:
        return succeed(None)

    def __repr__(self) -> str:
        return "<memory store>"
