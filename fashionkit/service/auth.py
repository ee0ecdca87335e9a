"""Accounts of the web service: password hashes (scrypt) and signed bearer tokens (HMAC-SHA256).

An account is a ``users`` row of the wardrobe database (its wardrobe) with a password hash in
``service_accounts`` (:class:`~fashionkit.wardrobe.models.AccountRow`, created by the wardrobe
migrations). A wardrobe made with the CLI has a ``users`` row but no password: registering its
name in the service is refused (that would hand the wardrobe to whoever asks first); whoever can
open the database gives it a password with ``fashionkit wardrobe password --user NAME``
(:meth:`Accounts.set_password`), and then logs in to the service as ``NAME``.

Password hash format: ``scrypt$n$r$p$<salt b64>$<hash b64>`` (standard-library
:func:`hashlib.scrypt`, 16-byte random salt, 32-byte key), so parameters can be raised later
without invalidating stored hashes.

Token format: ``<payload b64url>.<signature b64url>``, payload ``{"sub": user id, "gen": token
generation, "exp": unix seconds}`` as JSON, signature HMAC-SHA256 over the payload's base64 text
with the service's secret (32 random bytes kept in ``DATA_DIR/service-secret``, so tokens
survive restarts).

Revocation: a token is good only while its ``gen`` is the account's
``service_accounts.token_generation``, which every password change and every sign-out raises
by one (:meth:`Accounts.set_password`, :meth:`Accounts.change_password`,
:meth:`Accounts.end_sessions`), so each of them ends every token issued before it, on every
device and in every service process (the number is read from the database on each request,
with the account itself). A deleted account's tokens end with it (its id is never reused).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from fashionkit.wardrobe.models import AccountRow, UserRow

__all__ = [
    "Accounts",
    "NameTaken",
    "hash_password",
    "verify_password",
    "TokenSigner",
    "USERNAME_PATTERN",
    "MIN_PASSWORD_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "check_password_length",
    "normalize_name",
    "MIN_DISTINCT_CHARACTERS",
]

# Names appear in URLs and logs; keep them to a plain, unambiguous alphabet.
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # scrypt's cost does not grow with length; this only bounds memory

# n=2**14, r=8: 16 MiB per hash, the Python docs' and OWASP's level for interactive logins.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def normalize_name(name: str) -> str:
    """The form in which account names are compared and registered: Unicode NFKC, then
    case-folded (``"ALICE"`` → ``"alice"``). For the names :data:`USERNAME_PATTERN` allows (ASCII)
    this is lower case, which SQL's ``lower()`` computes alike on SQLite and PostgreSQL."""
    return unicodedata.normalize("NFKC", name).casefold()


def _same_name(key: str):
    """A ``WHERE`` clause: ``users.name`` is ``key`` (a :func:`normalize_name` form) in any
    case; wardrobes named by the CLI keep the case they were given."""
    return func.lower(UserRow.name) == key


# Fewer different characters than this is a password guessed among the first few thousand
# ("aaaaaaaa", "abababab", eight spaces), whatever its length.
MIN_DISTINCT_CHARACTERS = 5


def check_password_length(password: str) -> None:
    """``ValueError`` naming the rule when ``password`` is too short or too long, or too
    easily guessed (all spaces, or fewer than :data:`MIN_DISTINCT_CHARACTERS` different
    characters)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    if not password.strip() or len(set(password)) < MIN_DISTINCT_CHARACTERS:
        raise ValueError(
            f"a password needs at least {MIN_DISTINCT_CHARACTERS} different characters and "
            "not only spaces"
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        maxmem=_SCRYPT_MAXMEM,
        dklen=32,
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        key = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_SCRYPT_MAXMEM,
            dklen=len(_unb64(expected)),
        )
    except ValueError:
        return False
    return hmac.compare_digest(key, _unb64(expected))


# Verified against when a name is unknown, so a failed login costs the same time either way
# and response times do not tell which names exist.
_DUMMY_HASH = hash_password("not a password of anyone")


class TokenSigner:
    """Issues and checks bearer tokens for user ids."""

    def __init__(self, secret: bytes, ttl_s: float):
        if len(secret) < 16:
            raise ValueError("the token secret must be at least 16 bytes")
        self._secret = secret
        self.ttl_s = ttl_s

    @classmethod
    def from_file(cls, path: Path, ttl_s: float) -> TokenSigner:
        """The secret in ``path``, created (owner read/write only) on first use. Processes
        starting together agree on one: the secret is written whole under a temporary name
        and linked to ``path`` only if no other process's is there already."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
            try:
                with os.fdopen(fd, "wb") as f:  # mkstemp: owner read/write only
                    f.write(secrets.token_bytes(32))
                    f.flush()
                    os.fsync(f.fileno())
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        return cls(path.read_bytes(), ttl_s)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, user_id: int, generation: int = 0, now: float | None = None) -> str:
        """A token for ``user_id`` at the account's token ``generation``."""
        expires = int((now if now is not None else time.time()) + self.ttl_s)
        payload = _b64(json.dumps({"sub": user_id, "gen": generation, "exp": expires}).encode())
        return f"{payload}.{self._sign(payload)}"

    def claims(self, token: str, now: float | None = None) -> tuple[int, int] | None:
        """``(user id, token generation)`` of a valid, unexpired token; ``None`` otherwise
        (also for a token without a generation, from before tokens could be revoked)."""
        payload, _, signature = token.partition(".")
        if not payload or not signature:
            return None
        try:
            if not hmac.compare_digest(self._sign(payload), signature):
                return None
            claims = json.loads(_unb64(payload))
            user_id, generation, expires = claims["sub"], claims["gen"], claims["exp"]
        except (ValueError, KeyError, TypeError, UnicodeError):
            return None
        if not all(type(value) is int for value in (user_id, generation, expires)):
            return None
        if expires < (now if now is not None else time.time()):
            return None
        return user_id, generation

    def check(self, token: str, now: float | None = None) -> int | None:
        """The user id of a valid, unexpired token; ``None`` otherwise. Whether the token is
        still of the account's generation is for the caller (:func:`claims`)."""
        claims = self.claims(token, now)
        return claims[0] if claims is not None else None


class NameTaken(Exception):
    """The name has a wardrobe already; ``has_account`` tells whether it has a login too (when
    not, it was made with the CLI and its owner can set a password there)."""

    def __init__(self, name: str, has_account: bool):
        super().__init__(name)
        self.name = name
        self.has_account = has_account


@dataclass(frozen=True)
class Account:
    """A login: its wardrobe's id and name, and the token generation its tokens must carry."""

    user_id: int
    name: str
    generation: int = 0


class Accounts:
    """Registration and login against the wardrobe database (migrated to the head revision)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def _taken(self, key: str) -> NameTaken | None:
        """:class:`NameTaken` for the wardrobe named ``key`` in any case; ``None`` when none."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(UserRow.id, AccountRow.user_id.label("account"))
                .outerjoin(AccountRow, AccountRow.user_id == UserRow.id)
                .where(_same_name(key))
            ).all()
        if not rows:
            return None
        return NameTaken(key, any(row.account is not None for row in rows))

    def register(self, name: str, password: str) -> Account:
        """A new account with a new, empty wardrobe, under the name's :func:`normalize_name`
        form; :class:`NameTaken` when the name, in any case, has a wardrobe already (made here
        or with the CLI: registering must not hand over someone's existing wardrobe)."""
        key = normalize_name(name)
        taken = self._taken(key)
        if taken is not None:
            raise taken
        password_hash = hash_password(password)
        try:
            with self.engine.begin() as connection:
                user_id = connection.execute(
                    insert(UserRow).values(name=key).returning(UserRow.id)
                ).scalar_one()
                connection.execute(
                    insert(AccountRow).values(user_id=user_id, password_hash=password_hash)
                )
        except IntegrityError:
            # Registered by someone else between the check and the insert.
            raise self._taken(key) or NameTaken(key, True) from None
        return Account(user_id, key, 0)

    def set_password(self, name: str, password: str) -> Account:
        """Give the wardrobe ``name`` a login with ``password`` (replacing any it had),
        creating an empty wardrobe when there is none. For whoever can open the database (the
        CLI's ``fashionkit wardrobe password``), not for a web route."""
        check_password_length(password)
        password_hash = hash_password(password)
        with self.engine.begin() as connection:
            user_id = connection.execute(select(UserRow.id).where(UserRow.name == name)).scalar()
            if user_id is None:  # the account's name in another case is the same account
                user_id = connection.execute(
                    select(UserRow.id)
                    .where(_same_name(normalize_name(name)))
                    .order_by(UserRow.id)
                ).scalar()
            if user_id is None:
                user_id = connection.execute(
                    insert(UserRow).values(name=name).returning(UserRow.id)
                ).scalar_one()
            generation = connection.execute(
                update(AccountRow)
                .where(AccountRow.user_id == user_id)
                .values(
                    password_hash=password_hash,
                    token_generation=AccountRow.token_generation + 1,
                )
                .returning(AccountRow.token_generation)
            ).scalar()
            if generation is None:
                generation = 0
                connection.execute(
                    insert(AccountRow).values(
                        user_id=user_id, password_hash=password_hash, token_generation=0
                    )
                )
        return Account(user_id, name, generation)

    def change_password(self, user_id: int, current: str, new: str) -> Account | None:
        """Replace the login's password when ``current`` is right, ending every token issued
        before (the account with its new generation); ``None`` when ``current`` is wrong."""
        check_password_length(new)
        with self.engine.connect() as connection:
            stored = connection.execute(
                select(AccountRow.password_hash).where(AccountRow.user_id == user_id)
            ).scalar()
        if stored is None or not verify_password(current, stored):
            return None
        password_hash = hash_password(new)
        with self.engine.begin() as connection:
            generation = connection.execute(
                update(AccountRow)
                # Only if the password is still the one checked: of two changes at once, one wins.
                .where(AccountRow.user_id == user_id, AccountRow.password_hash == stored)
                .values(
                    password_hash=password_hash,
                    token_generation=AccountRow.token_generation + 1,
                )
                .returning(AccountRow.token_generation)
            ).scalar()
        if generation is None:
            return None
        account = self.get(user_id)
        return account if account is not None and account.generation == generation else None

    def end_sessions(self, user_id: int) -> None:
        """Sign out everywhere: every token of the login issued so far stops working."""
        with self.engine.begin() as connection:
            connection.execute(
                update(AccountRow)
                .where(AccountRow.user_id == user_id)
                .values(token_generation=AccountRow.token_generation + 1)
            )

    def authenticate(self, name: str, password: str) -> Account | None:
        if not USERNAME_PATTERN.fullmatch(name):
            # No account has such a name; not looked up (PostgreSQL refuses a NUL in it).
            verify_password(password, _DUMMY_HASH)
            return None
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    UserRow.id, UserRow.name, AccountRow.password_hash, AccountRow.token_generation
                )
                .join(AccountRow, AccountRow.user_id == UserRow.id)
                .where(_same_name(normalize_name(name)))
                .order_by(UserRow.id)
            ).all()
        if not rows:
            verify_password(password, _DUMMY_HASH)
            return None
        # Accounts registered before names were compared in one case may differ only in
        # case: the one typed exactly is meant, else the oldest.
        row = next((r for r in rows if r.name == name), rows[0])
        if not verify_password(password, row.password_hash):
            return None
        return Account(row.id, row.name, row.token_generation)

    def get(self, user_id: int) -> Account | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(UserRow.name, AccountRow.token_generation)
                .join(AccountRow, AccountRow.user_id == UserRow.id)
                .where(UserRow.id == user_id)
            ).first()
        return Account(user_id, row.name, row.token_generation) if row is not None else None
