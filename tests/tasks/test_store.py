"""The contact store against the real Redis: a read from WeChat never overwrites, nor brings back, what a later read
stored."""

from __future__ import annotations

import json

import redis

from tasks.store import ContactStore, contact_key, members_key

UIN, ME = "1150109773", "wxid_me"
FRIEND, ROOM = "wxid_friend", "1234@chatroom"


def record(name: str, remark: str = "") -> dict[str, str]:
    return {"UserName": name, "Remark": remark}


def test_a_read_older_than_the_stored_one_is_not_written(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    sync_read = store.now_us()  # a sync reads its page, with the old remark
    remark_read = store.now_us()  # modifyName sets the remark and reads the contact again, then stores it
    assert store.put_contacts(UIN, ME, [record(FRIEND, "new")], remark_read) == set()
    assert store.put_contacts(UIN, ME, [record(FRIEND, "old"), record("wxid_other")], sync_read) == {FRIEND}
    assert store.contact(UIN, ME, FRIEND) == record(FRIEND, "new")
    assert store.contact(UIN, ME, "wxid_other") == record("wxid_other")  # the rest of the page is stored


def test_a_read_as_late_or_later_is_written(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    read = store.now_us()
    store.put_contacts(UIN, ME, [record(FRIEND, "first")], read)
    assert store.put_contacts(UIN, ME, [record(FRIEND, "again")], read) == set()  # a retry of the same read
    assert store.contact(UIN, ME, FRIEND) == record(FRIEND, "again")
    store.put_contacts(UIN, ME, [record(FRIEND, "later")], store.now_us())
    assert store.contact(UIN, ME, FRIEND) == record(FRIEND, "later")


def test_the_store_layout_is_the_java_sides(store_redis: redis.Redis) -> None:
    ContactStore(store_redis).put_contacts(UIN, ME, [record(FRIEND, "甲")], 1)
    # Only the records, as JSON, in the hash the Java side reads: the read times live under a key of their own.
    stored = store_redis.hgetall(contact_key(UIN, ME))
    assert {name: json.loads(doc) for name, doc in stored.items()} == {FRIEND: record(FRIEND, "甲")}
    assert "甲" in stored[FRIEND]  # as UTF-8, not \u escapes


def test_a_removal_is_not_undone_by_an_older_read(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    store.put_contacts(UIN, ME, [record(FRIEND), record(ROOM)], store.now_us())
    store_redis.hset(members_key(UIN, ROOM), "wxid_member", "{}")
    stale = store.now_us()  # a refresh reads the friend before WeChat says the friend is gone
    store.remove(UIN, ME, [FRIEND, ROOM], store.now_us())
    assert store.put_contacts(UIN, ME, [record(FRIEND)], stale) == {FRIEND}
    assert store.usernames(UIN, ME) == set()
    assert not store_redis.exists(members_key(UIN, ROOM))  # a chatroom's members go with it


def test_a_contact_read_after_it_was_known_gone_is_not_removed(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    sync_started = store.now_us()  # a sync reads lists without the friend
    store.put_contacts(UIN, ME, [record(FRIEND, "added again")], store.now_us())  # a push: the friend is back
    store.remove(UIN, ME, [FRIEND], sync_started)  # the sync ends: the friend was in none of its lists
    assert store.contact(UIN, ME, FRIEND) == record(FRIEND, "added again")


def test_batches_larger_than_one_script_call(store_redis: redis.Redis) -> None:
    store = ContactStore(store_redis)
    names = [f"wxid_{n}" for n in range(1203)]
    store.put_contacts(UIN, ME, [record(n) for n in names], store.now_us())
    assert store.usernames(UIN, ME) == set(names)
    store.remove(UIN, ME, names, store.now_us())
    assert store.usernames(UIN, ME) == set()
