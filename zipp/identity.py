"""Pseudonymous user identity: ``user_key = H(salt, author)``. The salt is a secret (env var named
by ``etl.user_salt_env``, else ``etl.user_salt``) and is never written to any table, so keys
cannot be reversed from the lake alone; anyone holding the salt can map an author to its key
(``zipp forget``, evaluation against ground truth)."""

from __future__ import annotations

import hashlib
import os

from zipp.config import EtlConfig


def resolve_salt(cfg: EtlConfig) -> str:
    return os.environ.get(cfg.user_salt_env) or cfg.user_salt


def user_key(author: str, salt: str) -> str:
    """16 hex chars of SHA-256 over salt + NUL + author (case kept: Reddit names are case-preserving)."""
    return hashlib.sha256(salt.encode() + b"\x00" + author.encode("utf-8", "surrogatepass")).hexdigest()[:16]
