"""The committed generated code matches protos/: regenerate into a temporary tree and compare."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GENERATED = ("advisor_pb2.py", "advisor_pb2.pyi", "advisor_pb2_grpc.py")


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'protos'}", f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(REPO / "protos/advisor/api/v1/advisor.proto")],
        check=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / "advisor/api/v1" / name).read_text()
        committed = (REPO / "advisor/api/v1" / name).read_text()
        assert fresh == committed, f"advisor/api/v1/{name} is stale: run scripts/gen_proto.sh"
