"""Signing in: bearer tokens for users (OAuth2 password flow), who am I, signing out."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from gridmap.api.deps import bearer, signed_in
from gridmap.errors import Unauthenticated
from gridmap.store import audit, users
from gridmap.store.users import CurrentUser

router = APIRouter(prefix="/api/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: dict


@router.post("/token", response_model=TokenOut, summary="Sign in: username and password for a bearer token",
             responses={401: {"description": "wrong username or password"},
                        429: {"description": "too many failed sign-ins for this account or from this address; "
                                             "the Retry-After header says when to try again"}})
def token(request: Request, form: OAuth2PasswordRequestForm = Depends()) -> TokenOut:
    engine = request.app.state.engine
    throttle, address = request.app.state.throttle, request.client.host if request.client else "?"
    throttle.check_sign_in(form.username, address)  # a throttled guess is not even checked
    with engine.begin() as conn:
        user_id = users.authenticate(conn, form.username, form.password)
        if user_id is None:  # recorded (committed) before the error is raised
            audit.record(conn, actor=form.username[:64], action="auth.failed", table="users", row_key=None,
                         after={"address": address})
    if user_id is None:
        throttle.sign_in_failed(form.username, address)
        raise Unauthenticated("wrong username or password", "用户名或密码错误")
    throttle.sign_in_succeeded(form.username, address)
    with engine.begin() as conn:
        raw, expires = users.issue_token(conn, user_id, timedelta(hours=request.app.state.settings.token_ttl_hours))
        audit.record(conn, actor=form.username, action="auth.token", table="auth_tokens", row_key=str(user_id),
                     after={"expires_at": expires.isoformat()})
        user = users.user_for_token(conn, raw)
    return TokenOut(access_token=raw, expires_at=expires, user=user.as_dict())


@router.get("/me", summary="The signed-in user and their roles")
def me(user: CurrentUser = Depends(signed_in)) -> dict:
    return user.as_dict()


@router.post("/logout", status_code=204, summary="Revoke the token used for this request")
def logout(request: Request, raw: str | None = Depends(bearer), user: CurrentUser = Depends(signed_in)) -> None:
    with request.app.state.engine.begin() as conn:
        users.revoke_token(conn, raw or "")
        audit.record(conn, actor=user.username, action="auth.logout", table="auth_tokens", row_key=str(user.id),
                     before={"token": "live"}, after={"token": "revoked"})
