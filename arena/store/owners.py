"""Which arena process owns which battle, and whether that process is still alive.

Each `ArenaService` is one owner: it has an id (uuid4 hex) and writes a heartbeat row every few
seconds. A battle records the owner that is generating it. When a second arena starts on the same
database, it voids only the generating battles whose owner has stopped beating (or that have no owner:
databases written before owners existed), never another live process's battles.

    store.beat("3f2a...")                                           # in the owner's heartbeat thread
    store.void_orphaned_battles("3f2a...", alive_since, "reason")   # at start-up and between battles

Run as: python -m pytest tests/test_owners.py -q
"""

from __future__ import annotations

from datetime import UTC, datetime

from arena.store.sql import SqlStoreBase


class OwnerTables(SqlStoreBase):
    """Heartbeats of arena processes and the start-up sweep of battles whose process is gone."""

    def beat(self, owner_id: str) -> None:
        """Record that `owner_id` is alive now (also a real write: a full or read-only disk raises)."""
        with self._transaction() as session:
            session.insert(
                "owners", {"owner_id": owner_id, "heartbeat_at": self._now()}, replace_on="owner_id"
            )

    def retire(self, owner_id: str) -> None:
        """Remove the owner's heartbeat (a clean shutdown): its battles count as orphaned from now."""
        with self._transaction() as session:
            session.execute("DELETE FROM owners WHERE owner_id = ?", [owner_id])

    def void_orphaned_battles(self, owner_id: str, alive_since: datetime, reason: str) -> int:
        """Void battles still generating whose owner (not `owner_id`) has no heartbeat since
        `alive_since`, or that have no owner; returns how many."""
        cutoff = alive_since.astimezone(UTC).isoformat(timespec="microseconds")
        with self._transaction() as session:
            return session.execute(
                "UPDATE battles SET status = 'voided', void_reason = ? WHERE status = 'generating' "
                "AND (owner_id IS NULL OR (owner_id != ? AND owner_id NOT IN "
                "(SELECT owner_id FROM owners WHERE heartbeat_at >= ?)))",
                [reason, owner_id, cutoff],
            )
