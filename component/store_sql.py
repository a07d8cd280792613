"""The store's SQL backends: SQLite, embedded (the default), and PostgreSQL, shared by instances.

Both keep one table, ``iqresponder_store`` (namespace, key, value, expires),
and run every operation as one SQL statement in a thread of their own pool, so
the reactor thread never waits on a disk or a network. Each statement commits
on its own before its Deferred fires: SQLite in WAL mode with
``synchronous=FULL`` (the write is in the file, synced), PostgreSQL with its
default ``synchronous_commit``. Compare-and-set is one conditional UPDATE (or
INSERT ... ON CONFLICT for "only if absent"), atomic for every instance.

Why not ``twisted.enterprise.adbapi``: on a connection the database dropped it
logs two tracebacks per call and gives a caller no bound on the wait for a
connection. PostgreSQL's connections come from ``psycopg_pool`` instead (the
psycopg project's pool: it checks a connection before lending it, replaces
broken ones in the background, and bounds the wait), and the threads from
Twisted's ``ThreadPool`` and ``deferToThreadPool``, as adbapi's do.

An operation that cannot reach the database, or gets no answer within the
store's ``timeout``, fails with ``StoreUnavailable``; the backend logs once
when that starts and once when the database is back.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.defer import TimeoutError as DeadlineExceeded
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from component.store import StoreUnavailable

_T = TypeVar("_T")
Parameters = tuple[object, ...]
Row = tuple[Any, ...]

TABLE = "iqresponder_store"
DEADLINE_MARGIN = 0.5
"""Seconds beyond twice the timeout before the component stops waiting for an operation (see ``_in_thread``)."""

# Every statement below, written with ? placeholders (PostgreSQL's backend turns them into %s).
_LIVE = "(expires IS NULL OR expires > ?)"
READ = f"SELECT value FROM {TABLE} WHERE namespace = ? AND key = ? AND {_LIVE}"
WRITE = (
    f"INSERT INTO {TABLE} (namespace, key, value, expires) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires = excluded.expires"
)
REMOVE = f"DELETE FROM {TABLE} WHERE namespace = ? AND key = ? AND {_LIVE}"
SWAP = f"UPDATE {TABLE} SET value = ?, expires = ? WHERE namespace = ? AND key = ? AND value = ? AND {_LIVE}"
ADD = WRITE + f" WHERE {TABLE}.expires IS NOT NULL AND {TABLE}.expires <= ?"
"""Compare-and-set against "absent": insert, or replace an entry that has expired, and nothing else."""
PURGE = f"DELETE FROM {TABLE} WHERE expires IS NOT NULL AND expires <= ?"


def _scan(values: bool, bounded: bool, limit: bool) -> str:
    """The listing statement: keys in [prefix, successor) when ``bounded``; both backends order keys by code point."""
    columns = "key, value" if values else "key, NULL"
    where = "namespace = ? AND " + ("key >= ? AND key < ? AND " if bounded else "key >= ? AND ") + _LIVE
    return f"SELECT {columns} FROM {TABLE} WHERE {where} ORDER BY key" + (" LIMIT ?" if limit else "")


def successor(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix``; None when there is none."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            following = last + 1 if last + 1 != 0xD800 else 0xE000  # surrogates cannot be stored
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


class SQLBackend:
    """What both SQL backends share: the thread pool, the deadline, and the statements of each operation."""

    log = Logger()
    placeholder = "?"

    def __init__(self, reactor: Any, timeout: float, threads: int, description: str) -> None:
        self._reactor = reactor
        self.timeout = timeout
        self.description = description
        self._threads = ThreadPool(1, threads, name=f"iqresponder store ({description})")
        self._shutdown_trigger: Any = None
        self._open_lock = threading.Lock()
        self._opened = False
        self._closed = False
        self.available = True

    # The operations of component/store.py's backends.

    def read(self, namespace: str, key: str, now: float) -> Deferred[bytes | None]:
        return self._run(self._fetch_one, READ, (namespace, key, now))

    def write(self, namespace: str, key: str, data: bytes, expires: float | None) -> Deferred[None]:
        return self._run(self._change, WRITE, (namespace, key, data, expires)).addCallback(lambda _: None)

    def remove(self, namespace: str, key: str, now: float) -> Deferred[bool]:
        return self._run(self._change, REMOVE, (namespace, key, now)).addCallback(bool)

    def swap(
        self, namespace: str, key: str, expected: bytes | None, data: bytes, expires: float | None, now: float
    ) -> Deferred[bool]:
        if expected is None:
            changed = self._run(self._change, ADD, (namespace, key, data, expires, now))
        else:
            changed = self._run(self._change, SWAP, (data, expires, namespace, key, expected, now))
        return changed.addCallback(bool)

    def scan(
        self, namespace: str, prefix: str, limit: int | None, values: bool, now: float
    ) -> Deferred[list[tuple[str, bytes | None]]]:
        end = successor(prefix) if prefix else None
        parameters: Parameters = (namespace, prefix) + ((end,) if end is not None else ()) + (now,)
        if limit is not None:
            parameters += (limit,)
        statement = _scan(values, end is not None, limit is not None)
        return self._run(self._fetch_all, statement, parameters).addCallback(
            lambda rows: [(key, None if value is None else bytes(value)) for key, value in rows]
        )

    def purge(self, now: float) -> Deferred[int]:
        if not self._opened:
            return succeed(0)
        return self._run(self._change, PURGE, (now,))

    def close(self) -> Deferred[None]:
        """Stop the threads (those running finish their statement first) and close the connections; final."""
        if self._shutdown_trigger is not None:
            self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._stop()
        self._closed = True
        return succeed(None)

    def _stop(self) -> None:
        self._shutdown_trigger = None
        self._closed = True
        self._threads.stop()
        self._disconnect()

    # Running one statement in a thread, within the deadline.

    def _run(
        self, operation: Callable[[str, Parameters, float], _T], statement: str, parameters: Parameters
    ) -> Deferred[_T]:
        if self._closed:
            return fail(StoreUnavailable("the store is closed"))
        if self._shutdown_trigger is None:
            if not self._reactor.running:
                # A module's setup() runs before the reactor does, and before twistd forks into the
                # background, which would leave threads started now behind in the parent: wait for it.
                running: Deferred[None] = Deferred()
                self._reactor.callWhenRunning(running.callback, None)
                return running.addCallback(lambda _: self._run(operation, statement, parameters))
            self._threads.start()
            self._shutdown_trigger = self._reactor.addSystemEventTrigger("during", "shutdown", self._stop)
        statement = statement if self.placeholder == "?" else statement.replace("?", self.placeholder)
        submitted = time.monotonic()
        d = deferToThreadPool(
            self._reactor, self._threads, self._in_thread, operation, statement, parameters, submitted
        )
        d.addTimeout(self.deadline, self._reactor)
        return d.addCallbacks(self._answered, self._failed)

    @property
    def deadline(self) -> float:
        """When the component stops waiting for an operation: the backstop for what the database cannot see.

        An operation waits in the queue for a thread, then for a connection (at
        most ``timeout``), then runs; the database gives its statement up after
        ``timeout`` itself. ``_in_thread`` skips an operation that has waited so
        long it could not finish by the deadline, so an operation reported as
        failed did not happen, unless the network died under it.
        """
        return 2 * self.timeout + DEADLINE_MARGIN

    def _in_thread(
        self,
        operation: Callable[[str, Parameters, float], _T],
        statement: str,
        parameters: Parameters,
        submitted: float,
    ) -> _T:
        if self._closed:  # queued before close(): skipped, so that closing waits only for what is running
            raise StoreUnavailable("the store is closed")
        # What is left of the wait for a connection: the statement itself then has ``timeout`` more,
        # so that the operation ends before ``deadline``.
        left = self.timeout - (time.monotonic() - submitted)
        if left <= 0:
            raise StoreUnavailable(f"no thread free within {self.timeout:g} s")
        try:
            if not self._opened:
                with self._open_lock:
                    if not self._opened:
                        self._open()
                        self._opened = True
            return operation(statement, parameters, left)
        except self.reopen_on as e:
            self._opened = False  # the table went away: the next call makes it again
            raise StoreUnavailable(self._reason(e)) from None
        except self.unavailable as e:
            raise StoreUnavailable(self._reason(e)) from None

    def _answered(self, result: _T) -> _T:
        if not self.available:
            self.available = True
            self.log.info("The store is available again ({store})", store=self.description)
        return result

    def _failed(self, failure: Failure) -> Failure:
        if failure.check(DeadlineExceeded, CancelledError):
            failure = Failure(StoreUnavailable(f"no answer within {self.deadline:g} s"))
        problem = failure.value
        if isinstance(problem, StoreUnavailable) and self.available:
            self.available = False
            self.log.warn(
                "The store is unavailable ({store}): {reason}; requests that need it are answered "
                "internal-server-error (wait) until it is back",
                store=self.description,
                reason=problem.reason,
            )
        return failure

    def _reason(self, error: Exception) -> str:
        return " ".join(str(error).split()) or type(error).__name__

    # What each backend provides (called in a pool thread).

    unavailable: tuple[type[Exception], ...] = ()
    reopen_on: tuple[type[Exception], ...] = ()

    def _open(self) -> None:
        raise NotImplementedError

    def _disconnect(self) -> None:
        raise NotImplementedError

    # Each runs ``statement``, waiting at most ``wait`` seconds for a connection.

    def _fetch_one(self, statement: str, parameters: Parameters, wait: float) -> bytes | None:
        raise NotImplementedError

    def _fetch_all(self, statement: str, parameters: Parameters, wait: float) -> list[Row]:
        raise NotImplementedError

    def _change(self, statement: str, parameters: Parameters, wait: float) -> int:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.description}>"


SQLITE_SCHEMA = (
    (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, "
        "expires REAL, PRIMARY KEY (namespace, key)) WITHOUT ROWID"
    ),
    f"CREATE INDEX IF NOT EXISTS {TABLE}_expires ON {TABLE} (expires) WHERE expires IS NOT NULL",
)


class SQLiteBackend(SQLBackend):
    """One file, one connection, one thread: SQLite writes one at a time anyway.

    The file is created on first use, readable by its owner only (what
    handlers keep may be their users' data). Another process may use the same
    file (SQLite locks it); it then waits up to the timeout for its turn.
    """

    unavailable = (sqlite3.OperationalError, sqlite3.DatabaseError, OSError)

    def __init__(self, path: Path, reactor: Any, timeout: float = 5.0) -> None:
        super().__init__(reactor, timeout, threads=1, description=f"SQLite {path}")
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None

    def problem(self) -> str | None:
        """Why the file could not be used, if that can be told before using it (a directory not writable)."""
        directory = self.path.parent
        if not directory.is_dir():
            return f"its directory {directory} does not exist"
        if not os.access(directory, os.W_OK | os.X_OK):
            return f"its directory {directory} is not writable (SQLite writes its journal beside the file)"
        if self.path.exists() and not os.access(self.path, os.R_OK | os.W_OK):
            return f"{self.path} is not readable and writable"
        return None

    def _open(self) -> None:
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        connection = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False, cached_statements=32
        )
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")
            for statement in SQLITE_SCHEMA:
                connection.execute(statement)
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._opened = False

    def _opened_connection(self) -> sqlite3.Connection:
        connection = self._connection
        assert connection is not None, "_in_thread opens the connection before any statement"
        return connection

    def _fetch_one(self, statement: str, parameters: Parameters, wait: float) -> bytes | None:
        row = self._opened_connection().execute(statement, parameters).fetchone()
        value: bytes | None = None if row is None else row[0]
        return value

    def _fetch_all(self, statement: str, parameters: Parameters, wait: float) -> list[Row]:
        return self._opened_connection().execute(statement, parameters).fetchall()

    def _change(self, statement: str, parameters: Parameters, wait: float) -> int:
        return self._opened_connection().execute(statement, parameters).rowcount


POSTGRESQL_SCHEMA = (
    (
        f'CREATE TABLE IF NOT EXISTS {TABLE} (namespace text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, '
        "value bytea NOT NULL, expires double precision, PRIMARY KEY (namespace, key))"
    ),
    f"CREATE INDEX IF NOT EXISTS {TABLE}_expires ON {TABLE} (expires) WHERE expires IS NOT NULL",
)
SCHEMA_LOCK = 0x69717273  # the advisory lock that lets one of several instances starting together create the table


class PostgreSQLBackend(SQLBackend):
    """A pool of ``connections`` connections (and as many threads) to one database, shared by every instance.

    Each connection gives a statement up after the store's timeout, also while
    it waits for a row another session holds (``statement_timeout``,
    ``lock_timeout``). The table is made on first use when it is missing; a
    user without the right to make it can use one its owner made
    (docs/howto/store.md).
    """

    placeholder = "%s"

    def __init__(self, url: str, reactor: Any, timeout: float = 5.0, connections: int = 4) -> None:
        import psycopg
        import psycopg_pool
        from psycopg.conninfo import conninfo_to_dict

        # psycopg_pool reports each failed connection attempt through the logging module, which twistd
        # turns into error lines; the backend says it once (SQLBackend._failed) instead.
        logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
        logging.getLogger("psycopg.pool").propagate = False
        where = conninfo_to_dict(url)
        host, port, name = where.get("host", "localhost"), where.get("port", "5432"), where.get("dbname", "")
        super().__init__(reactor, timeout, threads=connections, description=f"PostgreSQL {host}:{port}/{name}")
        self._psycopg = psycopg
        self._url = url
        self.unavailable = (
            psycopg.OperationalError,
            psycopg.InterfaceError,
            psycopg.InternalError,
            psycopg.errors.InsufficientPrivilege,
            psycopg_pool.PoolTimeout,
        )
        self.reopen_on = (psycopg.errors.UndefinedTable,)
        self._pool_timeout = psycopg_pool.PoolTimeout
        self._connect_timeout = max(1, round(timeout))
        self._connections = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=connections,
            open=False,
            timeout=timeout,
            kwargs={"autocommit": True, "connect_timeout": self._connect_timeout},
            configure=self._configure,
            check=psycopg_pool.ConnectionPool.check_connection,
            # A connection attempt given up after this many seconds is started again by the next caller:
            # the store comes back within seconds of the database, not after a long backoff.
            reconnect_timeout=max(2 * timeout, 10.0),
            name="iqresponder-store",
        )

    def _configure(self, connection: Any) -> None:
        milliseconds = str(round(self.timeout * 1000))
        connection.execute(
            "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
            (milliseconds, milliseconds),
        )

    def connect(self) -> Deferred[None]:
        """Reach the database now (creating the table if needed), rather than at the first request."""
        return self._run(lambda statement, parameters, wait: None, "", ())

    def _open(self) -> None:
        """Make the table if it is missing, on a connection of its own: its failure says why (a password, a right)."""
        psycopg = self._psycopg
        with psycopg.connect(self._url, autocommit=True, connect_timeout=self._connect_timeout) as connection:
            self._configure(connection)
            if connection.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()[0] is None:
                try:
                    with connection.transaction():
                        connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                        for statement in POSTGRESQL_SCHEMA:
                            connection.execute(statement)
                except psycopg.errors.InsufficientPrivilege as e:
                    raise StoreUnavailable(
                        f"the table {TABLE} is missing and this user may not create it ({self._reason(e)}); "
                        "create it as the database's owner (docs/howto/store.md)"
                    ) from None
        self._connections.open(wait=False)

    def _reason(self, error: Exception) -> str:
        """What went wrong; for a pool that could lend no connection, what a connection attempt says now."""
        if isinstance(error, self._pool_timeout) and self.available:
            try:
                self._psycopg.connect(self._url, connect_timeout=self._connect_timeout).close()
            except self._psycopg.Error as e:
                error = e
        return super()._reason(error)

    def _disconnect(self) -> None:
        self._connections.close(timeout=self.timeout)
        self._opened = False

    def _fetch_one(self, statement: str, parameters: Parameters, wait: float) -> bytes | None:
        with self._connections.connection(wait) as connection:
            row = connection.execute(statement, parameters).fetchone()
        value: bytes | None = None if row is None else row[0]
        return value

    def _fetch_all(self, statement: str, parameters: Parameters, wait: float) -> list[Row]:
        with self._connections.connection(wait) as connection:
            rows: list[Row] = connection.execute(statement, parameters).fetchall()
        return rows

    def _change(self, statement: str, parameters: Parameters, wait: float) -> int:
        with self._connections.connection(wait) as connection:
            changed: int = connection.execute(statement, parameters).rowcount
        return changed
