"""What encrypting the migration stream (TLS) costs: a fixed share of the link's throughput.

QEMU caps a migration's plaintext (its rate limit counts the bytes it hands to the channel, below which TLS
encrypts), so a cap below what the link carries and the hosts encrypt costs nothing; where the link or the
encryption is what limits the stream, TLS's records (about 0.2 % of framing) and the CPU spent encrypting and
decrypting leave this share of the link's throughput to migration data. Applied to the link's free bandwidth
(not to the migration's cap) by the features layer when a move is to be encrypted.
"""

from __future__ import annotations

from typing import Final

# Measured in the lab (docs/tls.md, benchmarks/tls_overhead.py): uncapped migrations over loopback, where the
# CPU is what limits the stream, TLS against plain TCP, side by side.
TLS_THROUGHPUT_FACTOR: Final = 0.8


def encrypted_bandwidth(bandwidth_mib_s: float) -> float:
    """The throughput left to migration data of a link carrying `bandwidth_mib_s` once it is encrypted."""
    return bandwidth_mib_s * TLS_THROUGHPUT_FACTOR
