"""Registration, login, the logged-in account, and the ontology's categories (no login)."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from fashionkit.ontology import load_ontology
from fashionkit.service.auth import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    USERNAME_PATTERN,
    NameTaken,
)
from fashionkit.service.deps import CurrentAccount, State

router = APIRouter(prefix="/api")


class NewUser(BaseModel):
    name: str = Field(pattern=USERNAME_PATTERN.pattern, description="Letters, digits, _ . -")
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)


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
def create_user(state: State, user: NewUser) -> dict:
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
def login(state: State, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict:
    account = state.accounts.authenticate(form.username, form.password)
    if account is None:
        raise HTTPException(
            401, "wrong name or password", headers={"WWW-Authenticate": "Bearer"}
        )
    return {"access_token": state.signer.issue(account.user_id), "token_type": "bearer"}


@router.get("/me")
def me(account: CurrentAccount) -> dict:
    return {"id": account.user_id, "name": account.name}
