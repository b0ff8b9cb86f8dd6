"""Customers the business signed in: verifying the token its backend signs for each of them.

The business's backend signs a JWT with the claims ``sub`` (its own id for the customer),
``email``, ``name`` and ``exp`` (at most 24 hours ahead): HS256 with the shared secret
``HELPLINE_IDENTITY_SECRET``, or RS256 with a key from its JSON Web Key Set at
``HELPLINE_IDENTITY_JWKS_URL``. Each key type accepts exactly its own algorithm, so an unsigned
token (``alg: none``) or an HS256 token "signed" with the RS256 public key is refused, never
read. Every refusal says what is wrong; nothing falls back to an anonymous visitor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from helpline.config import ConfigError
from helpline.customers import VerifiedCustomer

MAX_LIFETIME = timedelta(hours=24)
"""The furthest ahead a token's ``exp`` may be: a leaked token stops working within a day."""
LEEWAY_SECONDS = 60
"""Clocks differ a little between the business's servers and this one."""
MAX_TOKEN_CHARS = 8192
MIN_SECRET_BYTES = 32
"""An HS256 secret at least as long as its hash (RFC 7518): anyone who sees one token could
guess a shorter one, and then sign in as any customer."""
UNREACHABLE_RETRY_SECONDS = 10
"""After the key set could not be read, tokens are answered at once (503) for this long,
instead of each waiting for the same address to fail again."""
_CLAIM_LIMITS = {"sub": 200, "email": 254, "name": 200}
_SIGN_AGAIN = "Sign the customer in again on the website to get a fresh token."


class IdentityRefused(Exception):
    """The token does not prove who the customer is (a 401); the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IdentityUnavailable(Exception):
    """Tokens cannot be checked right now: none are configured, or the key set is unreachable."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


NOT_CONFIGURED = (
    "This server does not accept signed-in customers: set HELPLINE_IDENTITY_SECRET (HS256) or "
    "HELPLINE_IDENTITY_JWKS_URL (RS256) and restart it, or start the conversation without a "
    "customer token."
)


class IdentityVerifier:
    """Checks customer tokens against the configured secret and key set; a ``ConfigError``
    names a setting that cannot be used."""

    def __init__(
        self,
        secret: str | None = None,
        jwks_url: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"HELPLINE_IDENTITY_SECRET is {len(secret.encode())} bytes long; an HS256 secret "
                f"needs at least {MIN_SECRET_BYTES}, or one token is enough to guess it. Make "
                "one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if jwks_url:
            parts = urlsplit(jwks_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"HELPLINE_IDENTITY_JWKS_URL is {jwks_url!r}; set it to the address of the "
                    "business's key set, e.g. https://shop.example.com/.well-known/jwks.json."
                )
        self._secret = secret
        self._jwks = jwt.PyJWKClient(jwks_url, timeout=10) if jwks_url else None
        self._jwks_url = jwks_url
        self._clock = clock
        self._unreachable_until = 0.0
        self._unreachable_because = ""

    @property
    def configured(self) -> bool:
        return bool(self._secret or self._jwks)

    def accepted(self) -> list[str]:
        """The algorithms this server verifies, each with the key that checks it."""
        return (["HS256"] if self._secret else []) + (["RS256"] if self._jwks else [])

    def needs_network(self, token: str) -> bool:
        """Whether checking ``token`` may fetch the key set (so it belongs on a thread)."""
        return self._jwks is not None and _algorithm(_header(token.strip())) == "RS256"

    def verify(self, token: str) -> VerifiedCustomer:
        """The customer ``token`` proves, or :class:`IdentityRefused` saying what is wrong."""
        if not self.configured:
            raise IdentityUnavailable(NOT_CONFIGURED)
        token = token.strip()  # a line break copied along with it changes nothing signed
        header = _header(token)
        algorithm = _algorithm(header)
        if algorithm.lower() == "none":
            raise IdentityRefused(
                "The customer token is not signed (its algorithm is 'none'). The business's "
                f"backend must sign it with {' or '.join(self.accepted())}."
            )
        if algorithm not in self.accepted():
            raise IdentityRefused(
                f"The customer token is signed with {algorithm}, but this server accepts only "
                f"{' or '.join(self.accepted())} tokens. Sign it with the configured key."
            )
        key = self._secret if algorithm == "HS256" else self._public_key(header.get("kid"))
        return self._customer(self._decode(token, algorithm, key))

    def _public_key(self, kid: Any) -> RSAPublicKey:
        """The RSA key ``kid`` names in the business's key set (fetched, then cached)."""
        assert self._jwks is not None
        if not kid:
            raise IdentityRefused(
                "The customer token names no key (its header has no kid), so the business's "
                "key set cannot say which key checks it. Sign it with the kid of a key in the "
                "set at HELPLINE_IDENTITY_JWKS_URL."
            )
        if self._clock() < self._unreachable_until:
            raise self._unreachable(self._unreachable_because)
        try:
            self._jwks.get_signing_keys()
        except jwt.PyJWKClientConnectionError as exc:
            raise self._unreachable(str(exc)) from exc
        except (jwt.PyJWKClientError, jwt.PyJWKSetError, ValueError) as exc:
            raise IdentityUnavailable(
                f"The business's key set at {self._jwks_url} holds no key that can check a "
                f"token ({exc}). It must be a JSON Web Key Set with the RSA public keys, each "
                "with its kid; fix HELPLINE_IDENTITY_JWKS_URL or what it serves."
            ) from exc
        try:
            found = self._jwks.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise self._unreachable(str(exc)) from exc
        except (jwt.PyJWKClientError, jwt.PyJWKSetError, ValueError) as exc:
            raise IdentityRefused(
                f"The customer token names key {kid!r}, which the business's key set does not "
                f"hold, so its signature cannot be checked. {_SIGN_AGAIN}"
            ) from exc
        if not isinstance(found.key, RSAPublicKey):
            raise IdentityRefused(
                f"Key {kid!r} in the business's key set is not an RSA public key, so it cannot "
                "check an RS256 token. Sign customer tokens with one of its RSA keys."
            )
        return found.key

    def _unreachable(self, because: str) -> IdentityUnavailable:
        """The refusal while the key set cannot be read, and tried again only after a while."""
        if self._clock() >= self._unreachable_until:
            self._unreachable_until = self._clock() + UNREACHABLE_RETRY_SECONDS
            self._unreachable_because = because
        return IdentityUnavailable(
            f"The business's key set at {self._jwks_url} could not be read ({because}). "
            "Check HELPLINE_IDENTITY_JWKS_URL and that the address answers, then try again."
        )

    def _decode(self, token: str, algorithm: str, key: Any) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                options={"require": ["exp"], "verify_aud": False, "verify_iss": False},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError as exc:
            expired = _when(_unverified_claims(token).get("exp"))
            raise IdentityRefused(f"The customer token expired{expired}. {_SIGN_AGAIN}") from exc
        except jwt.InvalidSignatureError as exc:
            raise IdentityRefused(
                "The customer token's signature does not match: it was not signed with this "
                "business's key (it was altered, forged, or signed with another key)."
            ) from exc
        except jwt.MissingRequiredClaimError as exc:
            raise IdentityRefused(_missing(["exp"])) from exc
        except jwt.ImmatureSignatureError as exc:
            raise IdentityRefused(
                "The customer token is not valid yet (its nbf or iat is in the future). "
                "Check the clock of the server that signs it."
            ) from exc
        except (jwt.InvalidKeyError, jwt.InvalidAlgorithmError) as exc:
            raise IdentityRefused(
                f"The customer token's algorithm {algorithm} does not fit the configured key. "
                f"Sign it with {' or '.join(self.accepted())} and the configured key."
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise IdentityRefused(
                f"The customer token is not valid ({exc}). {_SIGN_AGAIN}"
            ) from exc
        return claims

    def _customer(self, claims: dict[str, Any]) -> VerifiedCustomer:
        missing = [name for name in _CLAIM_LIMITS if claims.get(name) is None]
        if missing:
            raise IdentityRefused(_missing(missing))
        for name, limit in _CLAIM_LIMITS.items():
            if not _text(claims[name]):
                raise IdentityRefused(
                    f"The customer token's {name} claim is "
                    f"{'empty' if isinstance(claims[name], str) else 'not text'}; the business's "
                    f"backend must sign the customer's {name} as a string."
                )
            if len(str(claims[name])) > limit:
                raise IdentityRefused(
                    f"The customer token's {name} claim is longer than {limit} characters."
                )
        if "@" not in str(claims["email"]).strip("@"):
            raise IdentityRefused(
                f"The customer token's email claim {claims['email']!r} is not an email address."
            )
        latest = self._clock() + MAX_LIFETIME.total_seconds() + LEEWAY_SECONDS
        if int(claims["exp"]) > latest:
            raise IdentityRefused(
                f"The customer token's exp{_when(claims['exp'])} is more than 24 hours ahead. "
                "Sign customer tokens for at most 24 hours (exp at most a day away)."
            )
        return VerifiedCustomer(
            id=claims["sub"],  # exactly as the business signed it: " 42" is not "42"
            email=str(claims["email"]).strip(),
            name=str(claims["name"]).strip(),
        )


def _text(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and bool(str(value).strip())


def _missing(names: list[str]) -> str:
    return (
        f"The customer token lacks the {', '.join(names)} claim{'s' if len(names) > 1 else ''}. "
        "The business's backend must sign sub, email, name and exp."
    )


def _when(timestamp: Any) -> str:
    try:
        moment = datetime.fromtimestamp(float(timestamp), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return ""
    return f" {moment:%Y-%m-%d %H:%M} UTC"


def _header(token: str) -> dict[str, Any]:
    """The header of a token that reads as a JWT (three parts, a JSON header and payload);
    nothing in it is trusted yet."""
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2 or not token.isascii():
        raise IdentityRefused(
            "The customer token is not a JWT: it should be three base64url parts separated by "
            f"dots, at most {MAX_TOKEN_CHARS} characters, as the business's backend signs it."
        )
    try:
        header: dict[str, Any] = jwt.decode_complete(token, options={"verify_signature": False})[
            "header"
        ]
    except jwt.InvalidTokenError as exc:
        raise IdentityRefused(
            "The customer token is not a JWT: it should be three base64url parts separated "
            f"by dots, as the business's backend signs it ({exc})."
        ) from exc
    return header


def _algorithm(header: dict[str, Any]) -> str:
    algorithm = header.get("alg")
    return algorithm if isinstance(algorithm, str) else "none"


def _unverified_claims(token: str) -> dict[str, Any]:
    """Only for wording a refusal: what an expired (but correctly signed) token claimed."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return {}
    return claims
