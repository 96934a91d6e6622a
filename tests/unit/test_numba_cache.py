"""numba's cache (cache=True on the compiled loops) where the user can write: a service user whose HOME and the
package are not writable (nobody) could not even import the physics ("cannot cache function 'row_send_ratios'")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import advisor
from advisor import numba_cache_dir

PACKAGE = Path(advisor.__file__).resolve().parent


@pytest.mark.parametrize(("package_writable", "home_writable", "env", "chosen"), [
    (True, False, {"HOME": "/nonexistent"}, False),  # root, or the package's owner: beside the modules, as before
    (False, True, {"HOME": "{home}"}, False),  # numba's own ~/.cache/numba
    (False, False, {"HOME": "/nonexistent"}, True),  # nobody: a directory of its own
    (False, False, {"HOME": "{home}"}, True),
    (False, False, {"HOME": "/nonexistent", "NUMBA_CACHE_DIR": "/var/cache/x"}, False),  # the admin's choice kept
])
def test_numba_is_given_a_cache_only_where_its_own_choices_are_not_writable(
        tmp_path: Path, package_writable: bool, home_writable: bool, env: dict[str, str], chosen: bool) -> None:
    env = {k: v.format(home=tmp_path) for k, v in env.items()}

    def writable(path: Path) -> bool:
        return package_writable if PACKAGE in (path, *path.parents) else home_writable

    where = numba_cache_dir(PACKAGE, env, writable)
    assert (where is not None) is chosen
    assert where is None or where.name == f"advisor-numba-{os.getuid()}"


def test_a_user_who_can_write_neither_compiles_into_a_private_cache(tmp_path: Path) -> None:
    probe = ("import os\nreal = os.access\n"
             "os.access = lambda p, m, **k: False if m == os.W_OK else real(p, m, **k)  # nobody's view\n"
             "from advisor.physics import guards\nos.access = real\n"
             "assert guards._fmax(1.0, 2.0) == 2.0\nprint(os.environ['NUMBA_CACHE_DIR'])")
    env = {**os.environ, "HOME": str(tmp_path / "nohome"), "TMPDIR": str(tmp_path)}
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("XDG_CACHE_HOME", None)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120,
                          check=True)
    cache = Path(done.stdout.strip())
    assert cache == tmp_path / f"advisor-numba-{os.getuid()}" and cache.stat().st_mode & 0o777 == 0o700
    assert list(cache.rglob("*_fmax*.nbi"))  # numba wrote its cache there
