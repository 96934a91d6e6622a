"""The committed generated code matches protos/: regenerate into a temporary tree and compare."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import REPO

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


def test_every_field_method_and_enum_value_is_documented(tmp_path: Path) -> None:
    from google.protobuf import descriptor_pb2

    out = tmp_path / "set.pb"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'protos'}", "--include_source_info",
         f"--descriptor_set_out={out}", str(REPO / "protos/advisor/api/v1/advisor.proto")],
        check=True,
    )
    (file,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    documented = {
        tuple(loc.path) for loc in file.source_code_info.location if loc.leading_comments or loc.trailing_comments
    }
    missing = []
    for m, message in enumerate(file.message_type):
        missing += [f"{message.name}.{f.name}" for i, f in enumerate(message.field) if (4, m, 2, i) not in documented]
    for s, service in enumerate(file.service):
        missing += [f"{service.name}.{r.name}" for i, r in enumerate(service.method) if (6, s, 2, i) not in documented]
    for e, enum in enumerate(file.enum_type):
        missing += [f"{enum.name}.{v.name}" for i, v in enumerate(enum.value)
                    if v.number != 0 and (5, e, 2, i) not in documented]
    assert not missing, f"undocumented in advisor.proto: {', '.join(missing)}"
