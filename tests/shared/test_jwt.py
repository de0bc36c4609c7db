import asyncio
import base64
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from owr_shared.jwt import InvalidToken, JwksVerifier

ISS, AUD = "owr-auth", "owr-api"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_for(key: Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw), "kid": kid, "alg": "EdDSA", "use": "sig"}


def mint(key: Ed25519PrivateKey, kid: str, **overrides) -> str:
    now = int(time.time())
    claims = {
        "sub": "u1",
        "wid": "w1",
        "role": "owner",
        "typ": "access",
        "jti": uuid.uuid4().hex,
        "iss": ISS,
        "aud": AUD,
        "iat": now,
        "exp": now + 900,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


class Jwks:
    def __init__(self, *keys: tuple[Ed25519PrivateKey, str]) -> None:
        self.keys = list(keys)
        self.fetches = 0

    async def __call__(self) -> dict[str, Any]:
        self.fetches += 1
        return {"keys": [jwk_for(k, kid) for k, kid in self.keys]}


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


async def test_valid_token_gives_principal(key):
    verifier = JwksVerifier(Jwks((key, "k1")), issuer=ISS, audience=AUD)
    principal = await verifier.verify(mint(key, "k1"))
    assert principal.subject == "u1"
    assert principal.workspace_id == "w1"
    assert principal.role == "owner"


@pytest.mark.parametrize(
    ("claim", "verified"), [(True, True), (False, False), (None, False), ("true", False), (1, False)]
)
async def test_only_a_true_email_verified_claim_says_verified(key, claim, verified):
    """A token without the claim (minted before it existed) or with any other value counts as unverified."""
    verifier = JwksVerifier(Jwks((key, "k1")), issuer=ISS, audience=AUD)
    principal = await verifier.verify(mint(key, "k1", email_verified=claim))
    assert principal.email_verified is verified


async def test_unknown_kid_refreshes_the_jwks_once(key):
    jwks = Jwks((key, "k1"))
    verifier = JwksVerifier(jwks, issuer=ISS, audience=AUD, min_refresh_interval=0)
    await verifier.verify(mint(key, "k1"))
    assert jwks.fetches == 1
    new_key = Ed25519PrivateKey.generate()
    jwks.keys.append((new_key, "k2"))  # rotation: the new key appears in the JWKS
    await verifier.verify(mint(new_key, "k2"))
    assert jwks.fetches == 2
    await verifier.verify(mint(key, "k1"))  # the old key is still cached and served
    assert jwks.fetches == 2


async def test_refresh_is_rate_limited_for_unknown_kids(key):
    jwks = Jwks((key, "k1"))
    verifier = JwksVerifier(jwks, issuer=ISS, audience=AUD, min_refresh_interval=60)
    stranger = Ed25519PrivateKey.generate()
    for _ in range(5):
        with pytest.raises(InvalidToken):
            await verifier.verify(mint(stranger, "nope"))
    assert jwks.fetches == 1


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "evil"}, "issuer"),
        ({"exp": int(time.time()) - 120, "iat": int(time.time()) - 600}, "expired"),
        ({"typ": "refresh"}, "type"),
        ({"jti": None}, "missing jti"),
        ({"exp": int(time.time()) + 3600}, "lifetime"),
    ],
)
async def test_claims_are_enforced(key, overrides, reason):
    verifier = JwksVerifier(Jwks((key, "k1")), issuer=ISS, audience=AUD)
    with pytest.raises(InvalidToken):
        await verifier.verify(mint(key, "k1", **overrides))


async def test_alg_none_and_foreign_key_are_refused(key):
    verifier = JwksVerifier(Jwks((key, "k1")), issuer=ISS, audience=AUD)
    now = int(time.time())
    claims = {"sub": "u1", "typ": "access", "jti": "j", "iss": ISS, "aud": AUD, "iat": now, "exp": now + 60}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        await verifier.verify(unsigned)
    forged = mint(Ed25519PrivateKey.generate(), "k1")  # right kid, wrong key
    with pytest.raises(InvalidToken):
        await verifier.verify(forged)
    hs = jwt.encode(claims, "secret-secret-secret-secret-secret!", algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(InvalidToken):
        await verifier.verify(hs)
    with pytest.raises(InvalidToken):
        await verifier.verify("owrr_not-a-jwt")


async def test_unreachable_jwks_is_a_401_not_a_crash(key):
    async def broken() -> dict[str, Any]:
        raise OSError("connection refused")

    verifier = JwksVerifier(broken, issuer=ISS, audience=AUD)
    with pytest.raises(InvalidToken):
        await verifier.verify(mint(key, "k1"))


async def test_a_key_removed_from_the_jwks_stops_being_trusted(key):
    jwks = Jwks((key, "k1"))
    verifier = JwksVerifier(jwks, issuer=ISS, audience=AUD, min_refresh_interval=0, max_age=0)
    token = mint(key, "k1")
    await verifier.verify(token)
    jwks.keys.clear()  # withdrawn, e.g. after a leak
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_a_failed_periodic_reload_keeps_the_known_keys(key):
    jwks = Jwks((key, "k1"))
    verifier = JwksVerifier(jwks, issuer=ISS, audience=AUD, min_refresh_interval=0, max_age=0)
    await verifier.verify(mint(key, "k1"))

    async def down() -> dict[str, Any]:
        raise OSError("auth is down")

    verifier._fetch = down
    assert (await verifier.verify(mint(key, "k1"))).subject == "u1"


def _with_header(token: str, header: dict[str, Any]) -> str:
    """`token` with its header replaced by any JSON object (the signature no longer matters)."""
    import json

    return b64(json.dumps(header).encode()) + "." + token.split(".", 1)[1]


@pytest.mark.parametrize(
    "header",
    [
        {"alg": ["EdDSA"], "kid": "k1"},
        {"alg": {"EdDSA": 1}, "kid": "k1"},
        {"alg": None, "kid": "k1"},
        {"alg": 1, "kid": "k1"},
        {"alg": "EdDSA", "kid": ["k1"]},
        {"alg": "EdDSA", "kid": {"k": 1}},
    ],
)
async def test_a_header_of_any_json_shape_is_a_401_never_a_crash(key, header):
    """Finding 4: an unhashable `alg` raised TypeError (a 500 at the gateway and every service)."""
    verifier = JwksVerifier(Jwks((key, "k1")), issuer=ISS, audience=AUD)
    with pytest.raises(InvalidToken):
        await verifier.verify(_with_header(mint(key, "k1"), header))


@pytest.mark.parametrize("typ", [["access"], {"access": 1}, 1, None])
async def test_a_signed_claim_of_the_wrong_shape_is_a_401(key, typ):
    verifier = JwksVerifier(Jwks((key, "k1")), issuer=ISS, audience=AUD)
    token = jwt.encode(
        {
            "sub": "u1",
            "typ": typ,
            "jti": "j",
            "iss": ISS,
            "aud": AUD,
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        key,
        algorithm="EdDSA",
        headers={"kid": "k1"},
    )
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


# --- the verified-token cache ----------------------------------------------------------------------


async def test_a_verified_token_is_served_from_the_cache(key):
    verifier = JwksVerifier(Jwks((key, "k1")), issuer=ISS, audience=AUD)
    token = mint(key, "k1")
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # the same principal object: not parsed again


async def test_a_different_token_never_gets_another_tokens_entry(key):
    verifier = JwksVerifier(Jwks((key, "k1")), issuer=ISS, audience=AUD)
    alice, bob = mint(key, "k1", sub="alice"), mint(key, "k1", sub="bob")
    assert (await verifier.verify(alice)).subject == "alice"
    assert (await verifier.verify(bob)).subject == "bob"
    assert (await verifier.verify(alice)).subject == "alice"
    # One character of the cached token's signature changed: a token of its own, verified, and refused.
    tampered = alice[:-2] + ("A" if alice[-2] != "A" else "B") + alice[-1]
    with pytest.raises(InvalidToken):
        await verifier.verify(tampered)


async def test_a_cached_token_is_still_checked_for_its_type(key):
    verifier = JwksVerifier(Jwks((key, "k1")), issuer=ISS, audience=AUD)
    token = mint(key, "k1")
    await verifier.verify(token)
    with pytest.raises(InvalidToken):
        await verifier.verify(token, expected_types=("service",))


async def test_the_cache_never_serves_a_token_beyond_its_exp(key):
    verifier = JwksVerifier(Jwks((key, "k1")), issuer=ISS, audience=AUD, leeway=0)
    now = int(time.time())
    token = mint(key, "k1", iat=now, exp=now + 2)
    await verifier.verify(token)
    await asyncio.sleep(now + 2.2 - time.time())
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_a_key_rotated_under_the_same_kid_drops_the_tokens_it_signed(key):
    jwks = Jwks((key, "k1"))
    verifier = JwksVerifier(jwks, issuer=ISS, audience=AUD, min_refresh_interval=0, max_age=0)
    token = mint(key, "k1")
    await verifier.verify(token)
    replacement = Ed25519PrivateKey.generate()
    jwks.keys[:] = [(replacement, "k1")]  # the same kid now names another key
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
    assert (await verifier.verify(mint(replacement, "k1"))).subject == "u1"


async def test_an_unchanged_jwks_reload_keeps_the_cached_tokens(key):
    jwks = Jwks((key, "k1"))
    verifier = JwksVerifier(jwks, issuer=ISS, audience=AUD, min_refresh_interval=0, max_age=0)
    token = mint(key, "k1")
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first
    assert jwks.fetches >= 2  # max_age=0: every call reloaded the JWKS, and the entry survived


async def test_the_cache_is_bounded(key):
    verifier = JwksVerifier(Jwks((key, "k1")), issuer=ISS, audience=AUD, cache_size=1)
    one, two = mint(key, "k1"), mint(key, "k1")
    first = await verifier.verify(one)
    await verifier.verify(two)  # evicts `one`
    again = await verifier.verify(one)
    assert again is not first
    assert again == first
