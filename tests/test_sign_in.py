"""Signing in against the real app and PostGIS: failed sign-ins throttled per account and address
(429 with Retry-After) while the owner still signs in from elsewhere, argon2id hashes, and old
scrypt hashes replaced at the next sign-in."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridmap.api.app import create_app
from gridmap.api.throttle import Throttle
from gridmap.store import users

PASSWORD = "correct horse battery"


def client_at(app, address: str) -> TestClient:
    return TestClient(app, client=(address, 40000))


def stored_hash(engine: sa.Engine, username: str) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT password_hash FROM users WHERE username = :u"),
                            {"u": username}).scalar_one()


def test_guessing_gets_429_while_the_owner_signs_in_from_elsewhere(engine: sa.Engine, database_url: str) -> None:
    with engine.begin() as conn:
        users.create_user(conn, "ana", PASSWORD)
    app = create_app(database_url=database_url)
    guesser, owner = client_at(app, "203.0.113.7"), client_at(app, "198.51.100.4")
    answers = [guesser.post("/api/auth/token", data={"username": "ana", "password": f"guess {i}"}) for i in range(20)]
    codes = [a.status_code for a in answers]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    refused = answers[5]
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60 + 1
    assert refused.json()["detail_zh"].startswith("登录失败次数过多") and "too many" in refused.json()["detail_en"]
    # the guesser is refused even with the right password: the guess is never checked
    assert guesser.post("/api/auth/token", data={"username": "ana", "password": PASSWORD}).status_code == 429
    signed = owner.post("/api/auth/token", data={"username": "ana", "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    with engine.connect() as conn:
        failures = conn.execute(sa.text("SELECT count(*), count(DISTINCT after->>'address') FROM audit_log "
                                        "WHERE action = 'auth.failed'")).one()
    assert tuple(failures) == (5, 1)  # the checked guesses, each with its address; the throttled ones never ran


def test_one_address_guessing_at_many_accounts_is_throttled(engine: sa.Engine, database_url: str) -> None:
    with engine.begin() as conn:
        users.create_user(conn, "ben", PASSWORD)
    app = create_app(database_url=database_url)
    sprayer = client_at(app, "203.0.113.9")
    codes = [sprayer.post("/api/auth/token", data={"username": f"user{i}", "password": "123456"}).status_code
             for i in range(31)]
    assert codes[:30] == [401] * 30 and codes[30] == 429
    assert sprayer.post("/api/auth/token", data={"username": "ben", "password": PASSWORD}).status_code == 429
    assert client_at(app, "198.51.100.5").post("/api/auth/token",
                                                data={"username": "ben", "password": PASSWORD}).status_code == 200


def test_a_success_clears_the_count_of_its_account_and_address(engine: sa.Engine, database_url: str) -> None:
    with engine.begin() as conn:
        users.create_user(conn, "cai", PASSWORD)
    client = client_at(create_app(database_url=database_url), "192.0.2.1")
    for _ in range(2):  # four typos, then the right password, twice over: never throttled
        assert [client.post("/api/auth/token", data={"username": "cai", "password": "typo"}).status_code
                for _ in range(4)] == [401] * 4
        assert client.post("/api/auth/token", data={"username": "cai", "password": PASSWORD}).status_code == 200


def test_passwords_are_argon2id_and_old_scrypt_hashes_are_replaced_at_sign_in(engine: sa.Engine,
                                                                                database_url: str) -> None:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**15, r=8, p=1, maxmem=2**26)
    old = f"scrypt${2**15}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    with engine.begin() as conn:
        users.create_user(conn, "dai", PASSWORD)
        users.create_user(conn, "old", "temporary password")
        conn.execute(sa.text("UPDATE users SET password_hash = :h WHERE username = 'old'"), {"h": old})
    assert stored_hash(engine, "dai").startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    client = client_at(create_app(database_url=database_url), "192.0.2.2")
    assert client.post("/api/auth/token", data={"username": "old", "password": "wrong"}).status_code == 401
    assert stored_hash(engine, "old") == old  # a wrong password changes nothing
    assert client.post("/api/auth/token", data={"username": "old", "password": PASSWORD}).status_code == 200
    new = stored_hash(engine, "old")
    assert new.startswith("$argon2id$") and PASSWORD not in new
    assert users.verify_password(PASSWORD, new) and not users.verify_password("wrong", new)
    assert client.post("/api/auth/token", data={"username": "old", "password": PASSWORD}).status_code == 200
    assert stored_hash(engine, "old") == new  # rehashed once, not at every sign-in


def test_an_unusable_redis_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="GRIDMAP_REDIS_URL"):
        Throttle("nosuch://127.0.0.1:1/0")
