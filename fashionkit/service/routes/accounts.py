"""Registration, login, the logged-in account, and the ontology's categories (no login)."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import AfterValidator, BaseModel, Field

from fashionkit.ontology import load_ontology
from fashionkit.service.auth import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    USERNAME_PATTERN,
    NameTaken,
    check_password_length,
    normalize_name,
)
from fashionkit.service.deps import CurrentAccount, State
from fashionkit.service.limits import LoginThrottle

router = APIRouter(prefix="/api")


def _checked_password(password: str) -> str:
    check_password_length(password)
    return password


#: A password a person chooses (registering or changing it): the rule of
#: :func:`~fashionkit.service.auth.check_password_length`, its length also in the OpenAPI schema.
NewPassword = Annotated[
    str,
    Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH),
    AfterValidator(_checked_password),
]


class NewUser(BaseModel):
    name: str = Field(pattern=USERNAME_PATTERN.pattern, description="Letters, digits, _ . -")
    password: NewPassword


def _throttle(request: Request) -> LoginThrottle:
    return request.app.state.throttle


def _client(request: Request) -> str:
    # The peer's address (uvicorn puts a local proxy's X-Forwarded-For here).
    return request.client.host if request.client else "unknown"


def _too_many(wait: int, what: str) -> HTTPException:
    return HTTPException(
        429, f"too many {what}; try again in {wait} s", headers={"Retry-After": str(wait)}
    )


@router.get("/categories")
def categories() -> list[dict]:
    """The categories an item may have (Fashionpedia's garments and accessories, ids
    0..26): ``[{"id", "name", "short_name", "supercategory"}]``. Items accept any of
    these names or the id."""
    from fashionkit.ontology import PART_IDS

    return [
        {"id": c.id, "name": c.name, "short_name": c.short_name,
         "supercategory": c.supercategory}
        for c in load_ontology().categories
        if c.id not in PART_IDS
    ]  # fmt: skip


@router.post("/users", status_code=201)
def create_user(state: State, request: Request, user: NewUser) -> dict:
    """Register; at most a set number of accounts per client address an hour (429 beyond)."""
    wait = _throttle(request).registration_wait(_client(request))
    if wait:
        raise _too_many(wait, "accounts created from your address")
    try:
        account = state.accounts.register(user.name, user.password)
    except NameTaken as taken:
        if taken.has_account:
            raise HTTPException(409, f"the name {user.name!r} is taken") from None
        raise HTTPException(
            409,
            f"the name {user.name!r} is taken by a wardrobe made with the command line; "
            f"its owner can give it a password with `fashionkit wardrobe password --user "
            f"{user.name}` and then log in here",
        ) from None
    return {"id": account.user_id, "name": account.name}


@router.post("/token")
def login(
    state: State, request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> dict:
    """A token for name and password; after repeated wrong passwords for an account or from
    an address, 429 with ``Retry-After`` until the wait has passed (see
    :class:`~fashionkit.service.limits.LoginThrottle`)."""
    throttle, client = _throttle(request), _client(request)
    name = normalize_name(form.username)
    wait = throttle.login_wait(name, client)
    if wait:
        raise _too_many(wait, "wrong passwords")
    account = state.accounts.authenticate(form.username, form.password)
    if account is None:
        throttle.login_failed(name, client)
        raise HTTPException(
            401, "wrong name or password", headers={"WWW-Authenticate": "Bearer"}
        )
    throttle.login_succeeded(name)
    return {
        "access_token": state.signer.issue(account.user_id, account.generation),
        "token_type": "bearer",
    }


@router.get("/me")
def me(account: CurrentAccount) -> dict:
    return {"id": account.user_id, "name": account.name}


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    new_password: NewPassword


@router.post("/me/password")
def change_password(
    state: State, request: Request, account: CurrentAccount, change: PasswordChange
) -> dict:
    """Change the password (the current one is asked again, and wrong ones are slowed as at
    login). Every token issued before, this one too, stops working; the answer holds a new
    token for this client."""
    throttle, client = _throttle(request), _client(request)
    name = normalize_name(account.name)
    wait = throttle.login_wait(name, client)
    if wait:
        raise _too_many(wait, "wrong passwords")
    changed = state.accounts.change_password(
        account.user_id, change.current_password, change.new_password
    )
    if changed is None:
        throttle.login_failed(name, client)
        raise HTTPException(403, "the current password is wrong")
    throttle.login_succeeded(name)
    return {
        "access_token": state.signer.issue(changed.user_id, changed.generation),
        "token_type": "bearer",
    }


@router.post("/logout", status_code=204)
def logout(state: State, account: CurrentAccount) -> Response:
    """Sign out everywhere: every token of the account issued so far stops working."""
    state.accounts.end_sessions(account.user_id)
    return Response(status_code=204)
