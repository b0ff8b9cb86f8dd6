"""Named support agents and their keys: a key is shown once, only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from helpline.store.tables import StoredAgent, detached

AGENT_KEY_PREFIX = "hlagent_"
"""Agents' keys start with this, so they are never mistaken for a customer's token."""
OPERATOR = "operator"
"""Who acts with the admin key; no agent may take this name."""
_NAME = re.compile(r"^[^\W\d_][\w .'-]{0,58}[\w.]$|^[^\W\d_]$")


class AgentNameTaken(ValueError):
    """There is already an agent with that name."""


@dataclass(frozen=True)
class AgentInfo:
    """An agent, without their key."""

    id: int
    name: str
    created_at: datetime


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_agent_key(credential: str) -> bool:
    return credential.startswith(AGENT_KEY_PREFIX)


def check_agent_name(name: str) -> str:
    """The name, stripped; ``ValueError`` saying what a name may be."""
    name = " ".join(name.split())
    if not _NAME.match(name):
        raise ValueError(
            f"{name!r} is not a usable agent name: use 1 to 60 letters, digits, spaces, dots, "
            "apostrophes or hyphens, starting with a letter, e.g. 'Mei Ling'."
        )
    if name.casefold() == OPERATOR:
        raise ValueError(f"{name!r} is reserved for whoever uses the admin key; choose another.")
    return name


class Agents:
    """Repository for agents."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, name: str) -> tuple[AgentInfo, str]:
        """Create an agent; returns them and their key, which is not stored and not shown again."""
        name = check_agent_name(name)
        key = AGENT_KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                if self._named(session, name) is not None:
                    raise AgentNameTaken(f"there is already an agent called {name!r}")
                row = StoredAgent(name=name, key_hash=hash_key(key))
                session.add(row)
        except IntegrityError as exc:  # a concurrent add of the same name won
            raise AgentNameTaken(f"there is already an agent called {name!r}") from exc
        return detached(AgentInfo, row), key

    def by_key(self, key: str) -> AgentInfo | None:
        """The agent whose key this is, or ``None``."""
        if not is_agent_key(key) or len(key) > 100:
            return None
        wanted = hash_key(key)
        with Session(self._engine) as session:
            row = session.scalar(select(StoredAgent).where(StoredAgent.key_hash == wanted))
            if row is None or not hmac.compare_digest(row.key_hash, wanted):
                return None
            return detached(AgentInfo, row)

    def get(self, name: str) -> AgentInfo | None:
        """The agent with this name (spaces and case as typed do not matter)."""
        with Session(self._engine) as session:
            row = self._named(session, " ".join(name.split()))
            return detached(AgentInfo, row) if row else None

    def remove(self, name: str) -> bool:
        """Remove an agent: their key stops working at once. False if there was none."""
        with Session(self._engine) as session, session.begin():
            row = self._named(session, " ".join(name.split()))
            if row is None:
                return False
            session.delete(row)
        return True

    def all(self) -> list[AgentInfo]:
        with Session(self._engine) as session:
            rows = session.scalars(select(StoredAgent).order_by(StoredAgent.name))
            return [detached(AgentInfo, row) for row in rows]

    @staticmethod
    def _named(session: Session, name: str) -> StoredAgent | None:
        return session.scalar(
            select(StoredAgent).where(func.lower(StoredAgent.name) == name.lower())
        )
