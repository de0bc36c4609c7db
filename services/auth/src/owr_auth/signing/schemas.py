"""JWKS documents as published."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class JWK(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class JWKS(BaseModel):
    keys: list[JWK]
