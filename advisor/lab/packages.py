"""The Debian packages the lab's guest is built from, and the initramfs they go into.

Nothing is installed on the host: `apt-get download` fetches the packages and `dpkg-deb -x` unpacks them. busybox's
`cpio` cannot create archives and the `cpio` package is not on the machine, so a small newc writer is here.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

BUSYBOX_PACKAGE = "busybox-static"
# Real programs the project did not write, for the guest image with programs (`ensure_image(programs=True)`), and
# the Debian packages that hold them and every shared library they load (checked when the image is built).
PROGRAMS = ("stress", "stress-ng")
PROGRAM_PACKAGES = (
    "stress", "stress-ng", "libc6", "libgcc-s1", "libapparmor1", "libbsd0", "libmd0", "libcrypt1", "libegl1",
    "libglvnd0", "libgbm1", "libdrm2", "libexpat1", "libwayland-server0", "libffi8", "libgles2", "libipsec-mb1",
    "libjpeg62-turbo", "libjudydebian1", "libkmod2", "liblzma5", "libzstd1", "libssl3", "libsctp1", "libxxhash0",
    "zlib1g",
)
LIB_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu")
KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
MODULES = ("virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "virtio_balloon")
# For a guest with a disk of its own (`advisor lab up --disk-mib`); parts fetched before it was added lack it, and
# are fetched again only when a lab wants disks.
DISK_MODULES = ("virtio_blk",)


def _newc_header(name: str, mode: int, size: int, ino: int, nlink: int = 1) -> bytes:
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name) + 1, 0]
    raw = b"070701" + "".join(f"{f:08X}" for f in fields).encode() + name.encode() + b"\0"
    return raw + b"\0" * (-len(raw) % 4)


def write_initramfs(tree: Path, out: Path) -> None:
    """Write `tree` as a gzip-compressed newc cpio archive, the format the kernel unpacks as its initramfs."""
    data = bytearray()
    ino = 1
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        rel = os.path.relpath(dirpath, tree)
        if rel != ".":
            ino += 1
            data += _newc_header(rel, stat.S_IFDIR | 0o755, 0, ino, 2)
        for name in sorted(filenames):
            path = Path(dirpath, name)
            content = path.read_bytes()
            ino += 1
            data += _newc_header(os.path.normpath(os.path.join(rel, name)),
                                 stat.S_IFREG | (path.stat().st_mode & 0o777), len(content), ino)
            data += content + b"\0" * (-len(content) % 4)
    data += _newc_header("TRAILER!!!", 0, 0, 0)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(bytes(data), 6))
    tmp.replace(out)


def _kernel_package() -> str:
    out = subprocess.run(["apt-cache", "depends", KERNEL_META_PACKAGE], check=True, capture_output=True, text=True)
    match = re.search(r"Depends: (linux-image-\S+-cloud-amd64)", out.stdout)
    if match is None:
        raise RuntimeError(f"cannot find the kernel package that {KERNEL_META_PACKAGE} depends on")
    return match.group(1)


def fetch_parts(parts: Path, log: object = None) -> None:
    """Download and unpack the kernel and busybox into `parts/` (vmlinuz, busybox, modules/*.ko)."""
    package = _kernel_package()
    version = package.removeprefix("linux-image-")
    with tempfile.TemporaryDirectory(prefix="advisor-lab-guest-") as tmp:
        work = Path(tmp)
        # apt-get download prints a harmless "_apt sandbox" warning when run as root into a root-only directory.
        subprocess.run(["apt-get", "download", package, BUSYBOX_PACKAGE], cwd=work, check=True,
                       capture_output=True, text=True)
        tree = work / "x"
        for deb in sorted(work.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
        staging = parts.with_name(parts.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "modules").mkdir(parents=True)
        shutil.copy2(tree / "boot" / f"vmlinuz-{version}", staging / "vmlinuz")
        shutil.copy2(tree / "bin" / "busybox", staging / "busybox")
        for module in MODULES + DISK_MODULES:
            found = list((tree / "lib" / "modules" / version).rglob(f"{module}.ko"))
            if not found:
                raise RuntimeError(f"module {module}.ko not in {package}")
            shutil.copy2(found[0], staging / "modules" / f"{module}.ko")
        (staging / "VERSION").write_text(f"{package}\n")
        shutil.rmtree(parts, ignore_errors=True)
        staging.rename(parts)


def _needed(binary: Path) -> list[str]:
    out = subprocess.run(["objdump", "-p", str(binary)], check=True, capture_output=True, text=True).stdout
    return [line.split()[1] for line in out.splitlines() if line.strip().startswith("NEEDED")]


def _library_closure(tree: Path, binaries: list[Path]) -> dict[str, Path]:
    """Every shared library the binaries load, found in the unpacked packages; an error names what is missing."""
    found: dict[str, Path] = {}
    missing: set[str] = set()
    todo = list(binaries)
    while todo:
        for soname in _needed(todo.pop()):
            if soname in found or soname in missing:
                continue
            hits = [tree / d / soname for d in LIB_DIRS if (tree / d / soname).exists()]
            if not hits:
                missing.add(soname)
                continue
            found[soname] = hits[0].resolve()
            todo.append(found[soname])
    if missing:
        raise RuntimeError(f"shared libraries not in {', '.join(PROGRAM_PACKAGES)}: {', '.join(sorted(missing))}")
    return found


def fetch_programs(parts: Path) -> None:
    """Download the programs' packages and put the binaries and their libraries into `parts/` (bin/, lib/)."""
    with tempfile.TemporaryDirectory(prefix="advisor-lab-programs-") as tmp:
        work = Path(tmp)
        subprocess.run(["apt-get", "download", *PROGRAM_PACKAGES], cwd=work, check=True, capture_output=True,
                       text=True)
        tree = work / "x"
        for deb in sorted(work.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
        binaries = [tree / "usr" / "bin" / name for name in PROGRAMS]
        libraries = _library_closure(tree, binaries)
        staging = parts.with_name(parts.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "bin").mkdir(parents=True)
        (staging / "lib").mkdir()
        for binary in binaries:
            shutil.copy2(binary, staging / "bin" / binary.name)
        for soname, path in libraries.items():
            shutil.copy2(path, staging / "lib" / soname)
        (staging / "VERSION").write_text("".join(f"{deb.name}\n" for deb in sorted(work.glob("*.deb"))))
        shutil.rmtree(parts, ignore_errors=True)
        staging.rename(parts)
