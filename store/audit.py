"""The audit log: who did (or was refused) what."""

from __future__ import annotations

from store.base import StoreBase, _at, _ts
from store.records import AuditEntry


class AuditStore(StoreBase):
    def audit(
        self,
        actor: str,
        action: str,
        target: str = "",
        detail: str = "",
        *,
        allowed: bool = True,
        source: str = "cli",
    ) -> None:
        """Record who did (or was refused) what. `detail` must already be free of secrets."""
        with self._write():
            self._exec(
                "INSERT INTO audit_log (at, actor, action, target, detail, allowed, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_ts(self._clock()), actor, action, target, detail, int(allowed), source),
            )

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        """The latest audit entries, newest first."""
        with self._read():
            rows = self._all(
                "SELECT id, at, actor, action, target, detail, allowed, source FROM audit_log "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return [
            AuditEntry(
                id=r["id"],
                at=_at(r["at"]),
                actor=r["actor"],
                action=r["action"],
                target=r["target"],
                detail=r["detail"],
                allowed=bool(r["allowed"]),
                source=r["source"],
            )
            for r in rows
        ]
