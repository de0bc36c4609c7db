"""The per-key lock: one holder, released only by its holder, freed by its TTL."""

from __future__ import annotations

from owr_worker.locks import key_lock, lock_key


async def test_second_taker_is_refused_until_release(redis_client):
    async with key_lock(redis_client, "k1", ttl_seconds=30) as first:
        assert first is True
        async with key_lock(redis_client, "k1", ttl_seconds=30) as second:
            assert second is False
        assert await redis_client.exists(lock_key("k1"))  # the refused taker did not release it
        async with key_lock(redis_client, "k2", ttl_seconds=30) as other_key:
            assert other_key is True
    assert not await redis_client.exists(lock_key("k1"))
    ttl = await redis_client.pttl(lock_key("k1"))
    assert ttl == -2


async def test_lock_has_a_ttl(redis_client):
    async with key_lock(redis_client, "k1", ttl_seconds=30) as held:
        assert held
        assert 29_000 < await redis_client.pttl(lock_key("k1")) <= 30_000


async def test_release_leaves_a_lock_that_is_no_longer_ours(redis_client):
    async with key_lock(redis_client, "k1", ttl_seconds=30) as held:
        assert held
        # Our lock expired and another job took it meanwhile.
        await redis_client.set(lock_key("k1"), "someone-else")
    assert await redis_client.get(lock_key("k1")) == b"someone-else"


async def test_released_when_the_body_raises(redis_client):
    try:
        async with key_lock(redis_client, "k1", ttl_seconds=30):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert not await redis_client.exists(lock_key("k1"))


async def test_release_works_after_redis_forgot_its_scripts(redis_client):
    await redis_client.script_flush()
    async with key_lock(redis_client, "k1", ttl_seconds=30) as held:
        assert held
    assert not await redis_client.exists(lock_key("k1"))
