"""Live-migration advisor: predict what moving a VM costs, then choose what to move, where and how."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

__version__ = "0.1.0"


def numba_cache_dir(package: Path, env: Mapping[str, str],
                    writable: Callable[[Path], bool] = lambda p: os.access(p, os.W_OK)) -> Path | None:
    """Where numba must cache the compiled loops (cache=True: physics, planning kernels, trees), or None where its
    own choice works: beside the modules (their __pycache__, as the package's owner), else the user's cache
    (~/.cache/numba). A user with neither (a service user such as nobody: HOME and the package not writable) made
    numba refuse at import ("cannot cache function 'row_send_ratios'"); it gets a directory of its own in the
    temporary directory."""
    if env.get("NUMBA_CACHE_DIR"):
        return None
    beside = package / "physics" / "__pycache__"
    if writable(beside if beside.exists() else beside.parent):
        return None
    home = Path(env.get("XDG_CACHE_HOME") or Path(env.get("HOME") or "/nonexistent") / ".cache")
    user = next((p for p in (home / "numba", home, home.parent) if p.exists()), None)
    if user is not None and writable(user):
        return None
    import tempfile

    return Path(tempfile.gettempdir()) / f"advisor-numba-{os.getuid()}"


def _own_cache(path: Path) -> str:
    """`path` made ours alone (0700), or a fresh private directory where another user holds that name: compiled
    code read from a cache another user can write would run as us."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.lstat()
        if st.st_uid == os.getuid() and path.is_dir() and not path.is_symlink() and not st.st_mode & 0o022:
            return str(path)
    except OSError:
        pass
    import tempfile

    return tempfile.mkdtemp(prefix="advisor-numba-")


if (_cache := numba_cache_dir(Path(__file__).resolve().parent, os.environ)) is not None:
    os.environ["NUMBA_CACHE_DIR"] = _own_cache(_cache)  # read by numba when it is first imported
