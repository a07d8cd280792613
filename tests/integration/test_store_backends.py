"""One behaviour, three backends: the same cases on the test kit's memory store, SQLite and a real PostgreSQL.

Each test gets a fresh store: a memory one, a SQLite file in a temporary
directory, or a new database on the suite's private PostgreSQL cluster
(private_servers/postgresql.py). Expiry runs on a ``task.Clock`` the test
advances; the SQL backends' threads run on the real reactor (pytest-twisted).
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, ensureDeferred
from twisted.internet.task import Clock

from component.store import MAX_KEY_CHARS, MAX_VALUE_BYTES, MemoryStore, Store, StoreUnavailable, open_backend
from private_servers.base import free_port

BACKENDS = ("memory", "sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def backend_url(request, tmp_path):
    """What the store is opened on: None for memory, else a URL."""
    if request.param == "memory":
        return None
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return request.getfixturevalue("postgresql_url")


def open_store(url, clock, timeout=5.0):
    backend = MemoryStore() if url is None else open_backend(url, reactor, timeout)
    return Store(backend, clock)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(backend_url, clock):
    opened = open_store(backend_url, clock)
    yield opened
    opened.close()


@pytest.fixture
def mine(store):
    return store.for_module("mine")


@pytest_twisted.ensureDeferred
async def test_an_absent_key_reads_as_the_default(mine):
    assert await mine.get("nothing") is None
    assert await mine.get("nothing", 7) == 7


@pytest.mark.parametrize(
    "value",
    ["text", "", "ünïcödé ✓", 0, -12, 2**62, 1.5, True, False, [1, "two", None], {"b": [1, {"c": None}], "a": "x"}],
)
@pytest_twisted.ensureDeferred
async def test_json_values_come_back_equal(mine, value):
    await mine.set("k", value)
    assert await mine.get("k") == value


@pytest_twisted.ensureDeferred
async def test_bytes_come_back_as_bytes_and_apart_from_text(mine):
    await mine.set("raw", b"\x00\xff binary")
    await mine.set("text", "\x00\xff binary")
    assert await mine.get("raw") == b"\x00\xff binary"
    assert await mine.get("text") == "\x00\xff binary"


@pytest_twisted.ensureDeferred
async def test_a_tuple_comes_back_as_a_list(mine):
    await mine.set("pair", (1, 2))
    assert await mine.get("pair") == [1, 2]


@pytest_twisted.ensureDeferred
async def test_set_replaces_and_delete_says_whether_the_key_was_there(mine):
    await mine.set("k", "first")
    await mine.set("k", "second")
    assert await mine.get("k") == "second"
    assert await mine.delete("k") is True
    assert await mine.delete("k") is False
    assert await mine.get("k", "gone") == "gone"


@pytest_twisted.ensureDeferred
async def test_modules_never_see_each_others_keys(store):
    mine, theirs = store.for_module("mine"), store.for_module("theirs")
    await mine.set("shared-name", "mine")
    await theirs.set("shared-name", "theirs")
    assert await mine.get("shared-name") == "mine"
    assert await theirs.get("shared-name") == "theirs"
    assert await theirs.delete("shared-name") is True
    assert await mine.get("shared-name") == "mine"
    assert await mine.keys() == ["shared-name"]
    assert await theirs.keys() == []


@pytest_twisted.ensureDeferred
async def test_compare_and_set_writes_only_over_the_expected_value(mine):
    assert await mine.compare_and_set("n", None, 1) is True, "None expects the key absent"
    assert await mine.compare_and_set("n", None, 1) is False
    assert await mine.compare_and_set("n", 2, 3) is False
    assert await mine.get("n") == 1
    assert await mine.compare_and_set("n", 1, 2) is True
    assert await mine.get("n") == 2


@pytest_twisted.ensureDeferred
async def test_compare_and_set_compares_values_not_their_spelling(mine):
    await mine.set("doc", {"a": 1, "b": [1, 2]})
    assert await mine.compare_and_set("doc", {"b": [1, 2], "a": 1}, {"a": 2}) is True
    assert await mine.compare_and_set("bytes", None, b"x") is True
    assert await mine.compare_and_set("bytes", "x", b"y") is False, "text never equals bytes"
    assert await mine.compare_and_set("bytes", b"x", b"y") is True


@pytest_twisted.ensureDeferred
async def test_concurrent_increments_by_compare_and_set_lose_no_update(store):
    """Sixty increments started at once, each a read-compare-and-set loop: the counter ends at sixty."""
    counters = [store.for_module("counter") for _ in range(3)]  # as three instances would each hold one

    async def increment(counter):
        while True:
            current = await counter.get("hits")
            if await counter.compare_and_set("hits", current, (current or 0) + 1):
                return

    await DeferredList([ensureDeferred(increment(counters[i % 3])) for i in range(60)], fireOnOneErrback=True)
    assert await counters[0].get("hits") == 60


@pytest_twisted.ensureDeferred
async def test_keys_and_items_list_a_prefix_in_code_point_order(mine):
    for key in ("user/b", "user/a", "user/é", "user/Z", "user", "users/x", "other", "user/%", "user/_"):
        await mine.set(key, key.upper())
    assert await mine.keys("user/") == ["user/%", "user/Z", "user/_", "user/a", "user/b", "user/é"]
    assert await mine.keys("user/", limit=2) == ["user/%", "user/Z"]
    assert await mine.items("user/a") == [("user/a", "USER/A")]
    assert await mine.keys("user/_") == ["user/_"], "no LIKE wildcards"
    assert await mine.keys() == sorted(
        ["user/b", "user/a", "user/é", "user/Z", "user", "users/x", "other", "user/%", "user/_"]
    )
    assert await mine.keys("nobody") == []


@pytest_twisted.ensureDeferred
async def test_a_prefix_ending_in_the_last_code_point_lists_what_follows_it(mine):
    await mine.set("a\U0010ffff", 1)
    await mine.set("a\U0010ffffz", 2)
    await mine.set("b", 3)
    assert await mine.keys("a\U0010ffff") == ["a\U0010ffff", "a\U0010ffffz"]
    await mine.set("x\ud7ff1", 4)  # the next code point after U+D7FF that can be stored is U+E000
    await mine.set("x\ue000", 5)
    assert await mine.keys("x\ud7ff") == ["x\ud7ff1"]


@pytest_twisted.ensureDeferred
async def test_an_entry_expires_after_its_ttl_on_the_components_clock(mine, clock):
    await mine.set("session", {"step": 1}, ttl=10)
    await mine.set("forever", 1)
    clock.advance(9.5)
    assert await mine.get("session") == {"step": 1}
    assert await mine.keys() == ["forever", "session"]
    clock.advance(0.5)
    assert await mine.get("session") is None
    assert await mine.keys() == ["forever"]
    assert await mine.items() == [("forever", 1)]
    assert await mine.delete("session") is False, "an expired entry is not there to delete"


@pytest_twisted.ensureDeferred
async def test_an_expired_entry_counts_as_absent_for_compare_and_set(mine, clock):
    await mine.set("lock", "holder-1", ttl=5)
    assert await mine.compare_and_set("lock", None, "holder-2", ttl=5) is False
    clock.advance(5)
    assert await mine.compare_and_set("lock", "holder-1", "holder-3") is False
    assert await mine.compare_and_set("lock", None, "holder-2", ttl=5) is True
    assert await mine.get("lock") == "holder-2"


@pytest_twisted.ensureDeferred
async def test_set_without_ttl_makes_an_entry_permanent(mine, clock):
    await mine.set("k", 1, ttl=1)
    await mine.set("k", 2)
    clock.advance(3600)
    assert await mine.get("k") == 2


@pytest_twisted.ensureDeferred
async def test_the_purge_deletes_expired_entries_and_nothing_else(store, clock):
    mine = store.for_module("mine")
    await mine.set("old", 1, ttl=1)
    await mine.set("kept", 2)
    await mine.set("later", 3, ttl=100)
    clock.advance(2)
    assert await store.backend.purge(clock.seconds()) == 1
    clock.advance(-2)  # not something a clock does; it shows the entry is gone, not just hidden
    assert await mine.keys() == ["kept", "later"]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.set("k", None),
        lambda s: s.set("k", float("nan")),
        lambda s: s.set("k", {1: object()}),
        lambda s: s.set("k", object()),
        lambda s: s.set("", 1),
        lambda s: s.set(7, 1),
        lambda s: s.set("nul\x00key", 1),
        lambda s: s.set("x" * (MAX_KEY_CHARS + 1), 1),
        lambda s: s.set("lone \ud800", 1),
        lambda s: s.set("k", b"x" * (MAX_VALUE_BYTES + 1)),
        lambda s: s.set("k", "x" * (MAX_VALUE_BYTES - 1)),  # with its quotes, two bytes too many
        lambda s: s.set("k", 1, ttl=0),
        lambda s: s.set("k", 1, ttl=-1),
        lambda s: s.set("k", 1, ttl=True),
        lambda s: s.get(""),
        lambda s: s.delete(None),
        lambda s: s.compare_and_set("k", None, None),
        lambda s: s.keys(3),
        lambda s: s.keys("", limit=0),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_bad_key_value_or_ttl_fails_with_value_error_and_stores_nothing(mine, call):
    with pytest.raises(ValueError):
        await call(mine)
    assert await mine.keys() == []


@pytest_twisted.ensureDeferred
async def test_the_largest_value_fits(mine):
    await mine.set("big", b"x" * MAX_VALUE_BYTES)
    await mine.set("long", "é" * ((MAX_VALUE_BYTES - 2) // 2))
    assert len(await mine.get("big")) == MAX_VALUE_BYTES
    assert await mine.get("long") == "é" * ((MAX_VALUE_BYTES - 2) // 2)
    await mine.set("k" * MAX_KEY_CHARS, 1)
    assert await mine.get("k" * MAX_KEY_CHARS) == 1


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgresql"])
@pytest_twisted.ensureDeferred
async def test_a_store_that_cannot_be_reached_fails_with_store_unavailable(backend, tmp_path, clock):
    if backend == "memory":
        memory = MemoryStore()
        memory.fail_with = StoreUnavailable("played outage")
        store = Store(memory, clock)
    elif backend == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'gone' / 'store.sqlite3'}", clock)  # its directory is missing
    else:
        store = open_store(f"postgresql://nobody@127.0.0.1:{free_port()}/nothing", clock, timeout=2.0)
    mine = store.for_module("mine")
    try:
        for call in (mine.get("k"), mine.set("k", 1), mine.compare_and_set("k", None, 1), mine.keys()):
            with pytest.raises(StoreUnavailable) as raised:
                await call
            assert (raised.value.condition, raised.value.type) == ("internal-server-error", "wait")
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest_twisted.ensureDeferred
async def test_what_was_written_is_there_after_the_store_is_opened_again(backend, request, tmp_path, clock):
    url = (
        f"sqlite:///{tmp_path / 'store.sqlite3'}" if backend == "sqlite" else request.getfixturevalue("postgresql_url")
    )
    first = open_store(url, clock)
    await first.for_module("mine").set("kept", {"v": 1})
    first.close()
    second = open_store(url, clock)
    try:
        assert await second.for_module("mine").get("kept") == {"v": 1}
    finally:
        second.close()


def test_the_sqlite_file_is_created_on_first_use_for_its_owner_only(tmp_path, clock):
    path = tmp_path / "store.sqlite3"
    store = open_store(f"sqlite:///{path}", clock)
    assert not path.exists(), "opening the store touches nothing"
    store.close()


@pytest_twisted.ensureDeferred
async def test_the_sqlite_file_is_readable_by_its_owner_only(tmp_path, clock):
    path = tmp_path / "store.sqlite3"
    store = open_store(f"sqlite:///{path}", clock)
    try:
        await store.for_module("mine").set("k", 1)
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        store.close()
