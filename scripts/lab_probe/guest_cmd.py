"""Send one command line to vm1 on the probe lab and print the console line that answers it.

.venv/bin/python scripts/lab_probe/guest_cmd.py "ksym ffffffff811b60de" GUEST-KSYM
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, os.environ.get("PROBE_TREE", str(Path(__file__).resolve().parents[2])))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

root = Path(os.environ.get("PROBE_ROOT", "/tmp/lpc"))
lab = common.make_lab(root, Path(os.environ.get("PROBE_CACHE", "/tmp/lpc-cache")))
line, ack = sys.argv[1], sys.argv[2]
log = lab.serial_log(common.GUEST)
before = len(log.read_text(errors="replace")) if log else 0
lab._send(common.GUEST, (line + "\n").encode(), ack)
text = lab.serial_log(common.GUEST).read_text(errors="replace")[before:]
print("\n".join(x for x in text.splitlines() if ack.split()[0] in x or x.startswith("GUEST-K")))
