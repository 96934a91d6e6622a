"""What encrypting the migration stream (TLS) costs: a fixed share of the link's throughput.

QEMU caps a migration's plaintext (its rate limit counts the bytes it hands to the channel, below which TLS
encrypts), so a cap below what the link carries and the hosts encrypt costs nothing; where the link or the
encryption is what limits the stream, TLS's records (about 0.2 % of framing) and the CPU spent encrypting and
decrypting leave this share of the link's throughput to migration data. Applied to the link's free bandwidth
(not to the migration's cap) by the features layer when a move is to be encrypted.
"""

from __future__ import annotations

from typing import Final

# Measured in the lab (benchmarks/tls_overhead.py, docs/transport.md): an idle 128 MiB guest migrated
# plain and over TLS in turn at caps of 32, 64 and 8192 MiB/s took 1.07, 1.31 and 1.19 times as long over TLS
# (median of 5 each, 2026-12-06): 1 / 1.19 is 0.84. On that loaded 2-core machine QEMU's TLS stream peaked at
# 31-38 MiB/s whatever the cap (plain reached 46-91 MiB/s), so the cost is a ceiling more than a share: under it
# nothing is lost (x0.93 of the rate at 32 MiB/s), above it more (x0.51 uncapped). One factor is that ceiling
# averaged over the lab's caps; hosts that encrypt faster than their link lose less.
TLS_THROUGHPUT_FACTOR: Final = 0.85


def encrypted_bandwidth(bandwidth_mib_s: float) -> float:
    """The throughput left to migration data of a link carrying `bandwidth_mib_s` once it is encrypted."""
    return bandwidth_mib_s * TLS_THROUGHPUT_FACTOR
