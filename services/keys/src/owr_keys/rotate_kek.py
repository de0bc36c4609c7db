"""`python -m owr_keys.rotate_kek`: re-wrap every stored key's DEK under the active KEK, while serving.

Procedure: add the new KEK to `KEYS_KEKS`, make it `KEYS_ACTIVE_KEK_VERSION`, deploy (new keys are
wrapped under it, old rows still open under the old one), run this command, then remove the old
KEK from the configuration once it reports `remaining=0`.

Rows are taken in batches with `SELECT ... FOR UPDATE SKIP LOCKED` and each batch commits on its
own (`owr_shared.db.transaction`): a row a request holds locked is picked up by a later pass instead
of waiting for it. The SQL is `KeyRepository`'s. Ciphertexts are never touched, only the wrapped DEKs.
Output is counts only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from owr_keys.keys.repository import KeyRepository
from owr_keys.settings import KeysSettings
from owr_keys.vault.crypto import SealedSecret, Vault
from owr_keys.vault.errors import KeyUnreadable
from owr_shared.db import create_engine, create_sessionmaker, transaction
from owr_shared.logging import configure_logging, get_logger
from owr_shared.settings import load_settings
from owr_shared.wall import SPANS

log = get_logger(__name__)


@dataclass(slots=True)
class RotationReport:
    """What a run did: rows re-wrapped, rows that would not open, rows still under another KEK, passes."""

    rewrapped: int = 0
    unreadable: int = 0
    remaining: int = 0
    passes: int = 0


async def _batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    vault: Vault,
    *,
    after: uuid.UUID | None,
    skip: set[uuid.UUID],
    batch_size: int,
    report: RotationReport,
) -> uuid.UUID | None:
    """Re-wrap one batch in one transaction; the last id seen, or None when the pass is over."""
    async with transaction(sessionmaker, SPANS) as session:
        repository = KeyRepository(session)
        rows = await repository.sealed_under_other_kek(vault.active_version, after=after, limit=batch_size)
        for row in rows:
            if row.id in skip:
                continue
            sealed = SealedSecret(row.ciphertext, row.nonce, row.wrapped_dek, row.dek_nonce, row.kek_version)
            try:
                rewrapped = vault.rewrap(sealed, workspace_id=row.workspace_id, key_id=row.id)
            except KeyUnreadable:
                skip.add(row.id)
                report.unreadable += 1
                continue
            await repository.rewrap(
                row.id,
                old_version=row.kek_version,
                wrapped_dek=rewrapped.wrapped_dek,
                dek_nonce=rewrapped.dek_nonce,
                kek_version=rewrapped.kek_version,
            )
            report.rewrapped += 1
        return rows[-1].id if rows else None


async def _remaining(sessionmaker: async_sessionmaker[AsyncSession], vault: Vault) -> int:
    async with transaction(sessionmaker, SPANS) as session:
        return await KeyRepository(session).count_under_other_kek(vault.active_version)


async def rotate(
    sessionmaker: async_sessionmaker[AsyncSession],
    vault: Vault,
    *,
    batch_size: int = 100,
    max_passes: int = 20,
    pause_seconds: float = 0.2,
) -> RotationReport:
    """Re-wrap every row not under `vault.active_version`; passes repeat for rows that were locked."""
    report = RotationReport()
    unreadable: set[uuid.UUID] = set()
    for _ in range(max_passes):
        report.passes += 1
        after: uuid.UUID | None = None
        while True:
            after = await _batch(
                sessionmaker, vault, after=after, skip=unreadable, batch_size=batch_size, report=report
            )
            if after is None:
                break
        report.remaining = await _remaining(sessionmaker, vault)
        if report.remaining <= len(unreadable):
            break
        # Rows still left were locked by requests; give them a moment to finish.
        await asyncio.sleep(pause_seconds)
    log.info(
        "kek_rotation_finished",
        active_version=vault.active_version,
        rewrapped=report.rewrapped,
        unreadable=report.unreadable,
        remaining=report.remaining,
        passes=report.passes,
    )
    return report


async def _run(settings: KeysSettings, batch_size: int) -> RotationReport:
    engine = create_engine(settings.database_url, pool_size=2, application_name="keys-rotate-kek")
    try:
        return await rotate(
            create_sessionmaker(engine, walled=True), Vault.from_settings(settings), batch_size=batch_size
        )
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m owr_keys.rotate_kek", description="Re-wrap every stored key under the active KEK."
    )
    parser.add_argument("--batch-size", type=int, default=100, help="rows per transaction (default 100)")
    args = parser.parse_args(argv)
    if not 1 <= args.batch_size <= 10_000:
        parser.error("--batch-size must be between 1 and 10000")
    settings = load_settings(KeysSettings)
    if not settings.kek_map():
        # An ephemeral KEK would make every stored key unreadable: refuse rather than "rotate" to it.
        print("KEYS_KEKS is not set: configure the KEKs and KEYS_ACTIVE_KEK_VERSION first", file=sys.stderr)
        return 2
    configure_logging("keys", settings.log_level, json=settings.log_json)
    report = asyncio.run(_run(settings, args.batch_size))
    print(f"rewrapped={report.rewrapped} unreadable={report.unreadable} remaining={report.remaining}")
    return 0 if report.remaining == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
