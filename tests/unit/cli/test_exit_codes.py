"""Exit codes as docs/cli.md promises them: 2 for bad usage, input or configuration (a flag, a file the user gave),
1 when the advisor refused or failed; one line on stderr, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.cli.main import main

HEADER = "technique,vm_memory_mib,dirty_rate_pages_per_s,available_bandwidth_mbps,max_bandwidth_mib_s\n"


@pytest.mark.parametrize(("input_text", "output", "said"), [
    (None, "out.csv", "file not found"),  # no --input file
    (HEADER + "precopy,-1,100,10000,64\n", "out.csv", "row 1: vm_memory_mib is negative"),
    (HEADER, "out.csv", "no rows"),
    (HEADER + "precopy,1024,100,10000,64\n", "absent/out.csv", "No such file or directory: "),  # no output dir
])
def test_predict_cost_exits_2_on_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            input_text: str | None, output: str, said: str) -> None:
    src = tmp_path / "in.csv"
    if input_text is not None:
        src.write_text(input_text)
    code = main(["predict", "cost", "--input", str(src), "--output", str(tmp_path / output),
                 "--models-dir", str(tmp_path / "models")])
    err = capsys.readouterr().err
    assert code == 2 and said in err and "Traceback" not in err and ".tmp" not in err


@pytest.mark.parametrize("name", ["Bad/Name", "lab"])
def test_an_invalid_name_is_bad_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(HEADER)
    assert main(["profiles", "calibrate", "--name", name, "--input", str(src),
                 "--models-dir", str(tmp_path / "models")]) == 2
    assert capsys.readouterr().err.startswith("advisor: --name: ")


def test_a_listing_of_bad_rows_is_printed_a_row_a_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    src.write_text(HEADER + 'precopy,-1,100,10000,64\n"pre\ncopy",1024,100,10000,64\n')
    assert main(["predict", "cost", "--input", str(src), "--output", str(tmp_path / "out.csv"),
                 "--models-dir", str(tmp_path / "models")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[-3].startswith(f"advisor: {src}: 2 bad row(s)")
    # the listing's own line breaks are kept; one in a cell is shown escaped, never as a line of its own
    assert lines[-2:] == ["  row 1: vm_memory_mib is negative ('-1') [line 2]",
                          "  row 2: unknown technique 'pre\\ncopy' (one of precopy, precopy_autoconverge, "
                          "precopy_xbzrle, precopy_compress, postcopy, cold) [line 3]"]
