"""The contact store against the real Redis: a read of WeChat never overwrites, nor brings back, what a later read
stored."""

from __future__ import annotations

import json

import redis

from tasks.store import READ_CLOCK, ContactStore, contact_key, members_key

UIN, ME = "1150109773", "wxid_me"
FRIEND, ROOM = "wxid_friend", "1234@chatroom"


def record(name: str, remark: str = "") -> dict[str, str]:
    return {"UserName": name, "Remark": remark}


def test_a_read_older_than_the_stored_one_is_not_written(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    sync_read = store.read_clock()  # a sync reads its page, with the old remark
    remark_read = store.read_clock()  # modifyName sets the remark and reads the contact again, then stores it
    assert remark_read > sync_read
    assert store.put_contacts(UIN, ME, [record(FRIEND, "new")], remark_read) == set()
    # Not written, and not gone either: the store holds the later read.
    assert store.put_contacts(UIN, ME, [record(FRIEND, "old"), record("wxid_other")], sync_read) == set()
    assert store.contact(UIN, ME, FRIEND) == record(FRIEND, "new")
    assert store.contact(UIN, ME, "wxid_other") == record("wxid_other")  # the rest of the page is stored


def test_reads_follow_redis_clock_and_never_step_back(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    seconds, micros = store_redis.time()
    assert store.read_clock() >= seconds * 1_000_000 + micros
    # The clock stepped back (or the last read was handed out ahead of it): reads still come in order.
    store_redis.set(READ_CLOCK, 2**52)
    assert store.read_clock() == 2**52 + 1
    assert store.read_clock() == 2**52 + 2


def test_a_later_read_is_written(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    store.put_contacts(UIN, ME, [record(FRIEND, "first")], store.read_clock())
    store.put_contacts(UIN, ME, [record(FRIEND, "later")], store.read_clock())
    assert store.contact(UIN, ME, FRIEND) == record(FRIEND, "later")


def test_the_store_layout_is_the_java_sides(store_redis: redis.Redis) -> None:
    ContactStore(store_redis).put_contacts(UIN, ME, [record(FRIEND, "甲")], 1)
    # Only the records, as JSON, in the hash the Java side reads: the reads live under a key of their own.
    stored = store_redis.hgetall(contact_key(UIN, ME))
    assert {name: json.loads(doc) for name, doc in stored.items()} == {FRIEND: record(FRIEND, "甲")}
    assert "甲" in stored[FRIEND]  # as UTF-8, not \u escapes


def test_a_removal_is_not_undone_by_an_earlier_read(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    store.put_contacts(UIN, ME, [record(FRIEND), record(ROOM)], store.read_clock())
    store_redis.hset(members_key(UIN, ROOM), "wxid_member", "{}")
    stale = store.read_clock()  # a refresh reads the friend before WeChat says the friend is gone
    assert store.remove(UIN, ME, [FRIEND, ROOM], store.read_clock()) == [FRIEND, ROOM]
    assert store.put_contacts(UIN, ME, [record(FRIEND)], stale) == {FRIEND}  # gone: the caller announces nothing
    assert store.usernames(UIN, ME) == set()
    assert not store_redis.exists(members_key(UIN, ROOM))  # a chatroom's members go with it


def test_a_contact_found_after_it_was_found_gone_is_not_removed(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    sync_started = store.read_clock()  # a sync reads lists without the friend
    store.put_contacts(UIN, ME, [record(FRIEND, "added again")], store.read_clock())  # a push: the friend is back
    # The sync ends: the friend was in none of its lists, but is not removed, and so not announced as deleted.
    assert store.remove(UIN, ME, [FRIEND, "wxid_gone"], sync_started) == ["wxid_gone"]
    assert store.contact(UIN, ME, FRIEND) == record(FRIEND, "added again")


def test_a_removal_done_again_is_reported_again(store_redis: redis.Redis) -> None:
    """A pushed deletion retried after its announcement failed: removed again, so announced again."""
    store = ContactStore(store_redis)
    store.put_contacts(UIN, ME, [record(FRIEND)], store.read_clock())
    assert store.remove(UIN, ME, [FRIEND], store.read_clock()) == [FRIEND]
    assert store.remove(UIN, ME, [FRIEND], store.read_clock()) == [FRIEND]


def test_an_earlier_member_list_is_not_written_over_a_later_one(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    store.put_contacts(UIN, ME, [record(ROOM)], store.read_clock())
    sync_read = store.read_clock()  # a sync reads the members before one joins
    store.put_members(UIN, ME, ROOM, [record("wxid_a"), record("wxid_joined")], store.read_clock())  # the push's
    assert store.put_members(UIN, ME, ROOM, [record("wxid_a")], sync_read)  # not written, but the chatroom is there
    assert set(store.members(UIN, ROOM)) == {"wxid_a", "wxid_joined"}
    store.put_members(UIN, ME, ROOM, [record("wxid_b")], store.read_clock())
    assert set(store.members(UIN, ROOM)) == {"wxid_b"}  # a later list replaces it whole


def test_the_members_of_a_chatroom_found_gone_since_are_not_written(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    store.put_contacts(UIN, ME, [record(ROOM)], store.read_clock())
    members_read = store.read_clock()  # a worker reads the members, then stalls
    store.remove(UIN, ME, [ROOM], store.read_clock())  # the account left the chatroom
    assert not store.put_members(UIN, ME, ROOM, [record("wxid_a")], members_read)  # the caller announces nothing
    assert not store_redis.exists(members_key(UIN, ROOM))
    # Joined again, and read again: its members are written.
    store.put_contacts(UIN, ME, [record(ROOM)], store.read_clock())
    store.put_members(UIN, ME, ROOM, [record("wxid_a")], store.read_clock())
    assert set(store.members(UIN, ROOM)) == {"wxid_a"}


def test_batches_larger_than_one_script_call(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    names = [f"wxid_{n}" for n in range(1203)] + [ROOM]  # the chatroom in the last batch
    store.put_contacts(UIN, ME, [record(n) for n in names], store.read_clock())
    store_redis.hset(members_key(UIN, ROOM), "wxid_member", "{}")
    assert store.usernames(UIN, ME) == set(names)
    stale = store.read_clock()
    assert store.remove(UIN, ME, names, store.read_clock()) == names
    assert store.usernames(UIN, ME) == set() and not store_redis.exists(members_key(UIN, ROOM))
    assert store.put_contacts(UIN, ME, [record(n) for n in names], stale) == set(names)
