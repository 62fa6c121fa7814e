"""Throttles: failed sign-ins per account and per address, public Open311 submissions per address.

Counted by the `limits` library (moving windows): in this process's memory by default, in Redis
when ``GRIDMAP_REDIS_URL`` is set, so that several server processes or hosts share the counts.
A throttle only counts and answers "wait N seconds"; the routes decide what to count (a failed
sign-in, a public submission) and refuse with :class:`gridmap.errors.TooManyRequests` (429 and
``Retry-After``).

Sign-in failures are counted three ways (``SIGN_IN_LIMITS``):

* per account and address: the guesser at one account from one place is stopped after a few
  tries, while the account's owner signs in from anywhere else;
* per address: one address guessing at many accounts;
* per account, from any address: a guessing botnet, with a limit high enough that it takes many
  addresses to lock the owner out, and only for the window.

A sign-in attempt takes its account-and-address slot before the password is checked (an atomic
increment, so a burst of parallel guesses cannot all pass a check made before any is counted);
a success gives it back by clearing that count, a failure counts against the other two windows.
Three addresses guessing for an hour reach the per-account window and lock the owner out for the
rest of it: the price of stopping a slow botnet, and logged as auth.failed with each address."""

from __future__ import annotations

import time
from dataclasses import dataclass

from limits import RateLimitItem, parse, storage, strategies

from gridmap.errors import TooManyRequests


@dataclass(frozen=True)
class SignInLimits:
    """How many failed sign-ins each window allows (``limits`` notation: "5/15 minutes")."""

    per_account_and_address: str = "5/15 minutes"
    per_address: str = "30/15 minutes"
    per_account: str = "50/hour"

    def items(self) -> tuple[tuple[str, RateLimitItem], ...]:
        return (("account-address", parse(self.per_account_and_address)), ("address", parse(self.per_address)),
                ("account", parse(self.per_account)))


class Throttle:
    """Moving-window counters in memory or, given a ``redis://`` URL, in Redis."""

    def __init__(self, redis_url: str | None = None, sign_in: SignInLimits = SignInLimits()):
        try:
            self.storage = storage.storage_from_string(redis_url) if redis_url else storage.MemoryStorage()
        except Exception as exc:  # the URL's scheme unknown, or its client library missing
            raise ValueError(f"GRIDMAP_REDIS_URL cannot be used for the throttle: {exc}") from exc
        self.limiter = strategies.MovingWindowRateLimiter(self.storage)
        self.sign_in_limits = sign_in.items()

    def _wait(self, item: RateLimitItem, *keys: str) -> int:
        """Seconds until ``item`` allows one more for ``keys``; 0 when it does now."""
        if self.limiter.test(item, *keys):
            return 0
        reset = self.limiter.get_window_stats(item, *keys).reset_time
        return max(1, int(reset - time.time()) + 1)

    # -- sign-in ------------------------------------------------------------------------------
    def _sign_in_keys(self, username: str, address: str) -> dict[str, tuple[str, ...]]:
        account = username.strip().lower()[:64]
        return {"account-address": ("sign-in", account, address), "address": ("sign-in-address", address),
                "account": ("sign-in-account", account)}

    def check_sign_in(self, username: str, address: str) -> None:
        """Take this attempt's account-and-address slot, or refuse (429) when it or any other
        sign-in window for this account or address is full."""
        keys = self._sign_in_keys(username, address)
        items = dict(self.sign_in_limits)
        taken = self.limiter.hit(items["account-address"], *keys["account-address"])
        wait = max(self._wait(item, *keys[name]) for name, item in self.sign_in_limits if name != "account-address")
        if not taken:
            wait = max(wait, self._wait(items["account-address"], *keys["account-address"]))
        if wait or not taken:
            raise TooManyRequests(
                f"too many failed sign-ins; try again in {wait} s",
                f"登录失败次数过多，请 {wait} 秒后再试", retry_after=wait)

    def sign_in_failed(self, username: str, address: str) -> None:
        """Count a wrong password against the address and the account (its account-and-address
        slot was taken by :meth:`check_sign_in`)."""
        keys = self._sign_in_keys(username, address)
        for name, item in self.sign_in_limits:
            if name != "account-address":
                self.limiter.hit(item, *keys[name])

    def sign_in_succeeded(self, username: str, address: str) -> None:
        keys = self._sign_in_keys(username, address)
        self.limiter.clear(dict(self.sign_in_limits)["account-address"], *keys["account-address"])

    # -- public submissions -------------------------------------------------------------------
    def public_submission(self, address: str, per_minute: int) -> None:
        """Count one public (anonymous) submission from ``address``; refuse (429) beyond
        ``per_minute``."""
        item = parse(f"{per_minute}/minute")
        if not self.limiter.hit(item, "open311", address):
            wait = self._wait(item, "open311", address)
            raise TooManyRequests(f"too many requests from this address; try again in {wait} s",
                                  f"此地址请求过多，请 {wait} 秒后再试", retry_after=wait)
