"""How a migration's data travels: over TLS or plain TCP, as the setting `migration_tls` and the two hosts allow.

`off` never asks for TLS; `preferred` asks for it where both hosts offer it and otherwise falls back to plain TCP,
saying so; `required` asks for it always and refuses a move to or from a host that does not offer it. A host offers
TLS when its hypervisor has the migration certificates (`Host.migration_tls`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from advisor.domain.model import Host


class TlsMode(enum.StrEnum):
    OFF = "off"
    PREFERRED = "preferred"
    REQUIRED = "required"

    @staticmethod
    def parse(text: str) -> TlsMode:
        try:
            return TlsMode(text)
        except ValueError:
            raise ValueError(f"migration_tls must be off, preferred or required, got {text!r}") from None


@dataclass(frozen=True)
class Transport:
    """The decision for one move: TLS or not, or refused (`refusal` says why), and the reason people read."""

    tls: bool
    reason: str
    refusal: str = ""


def without_tls(source: Host, target: Host) -> list[str]:
    """The ends of a move that offer no TLS for migration, by id."""
    return [h.id for h in (source, target) if not h.migration_tls]


def transport(mode: TlsMode, source: Host, target: Host) -> Transport:
    return decide(mode, without_tls(source, target))


def decide(mode: TlsMode, missing: list[str]) -> Transport:
    """The transport of a move whose ends `missing` (ids) offer no TLS for migration."""
    setting = f"setting migration_tls = {mode}"
    if mode is TlsMode.OFF:
        return Transport(False, f"transport: plain TCP ({setting})")
    if not missing:
        return Transport(True, f"transport: TLS, both hosts offer it ({setting})")
    hosts = " and ".join(missing)
    offers = "offers" if len(missing) == 1 else "offer"
    if mode is TlsMode.PREFERRED:
        return Transport(False, f"transport: plain TCP, unencrypted: {hosts} {offers} no TLS for migration "
                                f"({setting} falls back)")
    refusal = f"{hosts} {offers} no TLS for migration ({setting})"
    return Transport(False, f"transport: refused: {refusal}", refusal)
