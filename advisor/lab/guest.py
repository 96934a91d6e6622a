"""The lab's tiny guest: a Debian cloud kernel and a busybox initramfs, built once from Debian packages
(advisor.lab.packages).

The guest's /init prints `GUEST-BOOTED`, then a heartbeat every second on ttyS0 (a file on the host), and reads
commands from ttyS1 (a pty on the host, see `plan_command`). Its memory writer rewrites a region of tmpfs with
a shifting random pattern at a controlled rate: the content changes on every pass, so page-sampling dirty-rate
calculation sees it, and there are no zero pages that migration would send for free (FACTS pitfall 6).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from advisor.lab.packages import DISK_MODULES, MODULES, PROGRAMS, fetch_parts, fetch_programs, write_initramfs

# The share of each page the writer keeps zero, for data that XBZRLE and compression can shrink (see INIT).
CONSTANT_PCTS = (0, 50, 75)
# The writer copies at most this many MiB per `dd` (its random pattern is one MiB larger).
CHUNK_MIB = 2
# Guest RAM is this many KiB larger than asked for, so that QEMU 7.2's migration keeps TCG's dirty tracking right.
# QEMU's cpu_physical_memory_sync_dirty_bitmap() has a fast path for a RAM block whose length is a multiple of 64
# pages; before QEMU 9.0 (upstream fix "physmem: Fix migration dirty bitmap coherency with TCG memory access") it
# clears the migration dirty bits without re-arming TCG's TLB_NOTDIRTY, so a guest store through a TLB entry made
# before a bitmap sync is never marked dirty: the target gets a stale page (measured: 2-22 stale pages after 4 of 8
# completed pre-copies, see docs/lab.md), and the guest kernel crashes or spins there with interrupts off (a
# "silent" guest). 128 MiB + 8 KiB is no multiple of 64 pages, so QEMU takes the page-by-page path, which does
# reset the TLB. libvirt rounds <memory> to whole MiB, hence the QEMU arguments in domain_xml. 0 turns this off.
RAM_PAD_KIB = 8
# MiB the writer leaves available besides its region, so that tmpfs (which cannot be swapped) never wakes the OOM
# killer: the largest region is MemAvailable at boot less both patterns and this.
OOM_MARGIN_MIB = 25

# ash script; @REGION@ is the default working set in MiB (the region the writer cycles through when a plan names
# none, so at most that many distinct MiB change per second, which is what page-sampling can see). The plan file
# holds "SEQ REPEAT WS PHASE_S TICKS CONST_PCT SECONDS KIB_S SECONDS KIB_S...": WS the working set in MiB (`-`: the
# default region; 0: none), PHASE_S > 0 moves the working set to the next window of the largest region every
# PHASE_S seconds ("phased"), TICKS the writer's ticks per second (1: each second's MiB in one burst, then sleep;
# 10: spread over the second), CONST_PCT the share of every 4 KiB page that stays zero (0, 50 or 75: data that
# XBZRLE and compression can shrink), SECONDS 0 means "for ever". Ticks are kept by /proc/uptime, and a tick that
# overruns is not caught up, so a rate beyond what the guest can write shows as a lower measured rate rather than
# a backlog. A plan with another WS, PHASE_S or CONST_PCT first zeroes and frees what the writer had written (so
# QEMU, which skips zero pages, sees only the new working set) and, for a numeric WS, writes the working set once
# at full speed, so that it is all in memory before the plan's rate starts.
# `seal SEQ MIB DIR` fills DIR/advisor-seal with MIB MiB of random data, written through (MIB 0: leaves it, and drops
# the page cache so that a file on a disk is read from the disk) and prints its SHA-256 as the guest reads it back
# (advisor.lab.integrity); a sequence number seen already is ignored (the host resends).
# `prog SEQ ARGV...` on ttyS1 stops the program started before (its whole session) and, with an ARGV, starts that
# one in a session of its own: the guest image with programs has Debian's stress and stress-ng.
INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/shm; mount -t tmpfs -o size=90% tmpfs /dev/shm
for m in @MODULES@; do insmod /lib/modules/$m.ko 2>/dev/null; done
# a disk of its own (the lab's --disk-mib): formatted on first use, mounted where the integrity seals look
if [ -b /dev/vda ]; then
  mkdir -p /mnt/disk
  mount -t ext4 /dev/vda /mnt/disk 2>/dev/null || { mke2fs -q /dev/vda && mount -t ext4 /dev/vda /mnt/disk; }
  echo "GUEST-DISK mounted=$(grep -c ' /mnt/disk ' /proc/mounts)"
fi
read up _ </proc/uptime
CH=@CHUNK@
avail=$(sed -n 's/^MemAvailable: *\([0-9]*\).*/\1/p' /proc/meminfo); avail=$((avail / 1024))
# the largest region stays clear of the OOM killer: what is available, less both patterns and a margin
WMAX=$((avail - CH - @MARGIN@)); [ $WMAX -lt $CH ] && WMAX=$CH
DEF=$WMAX; [ $DEF -gt @REGION@ ] && DEF=@REGION@
echo "GUEST-BOOTED uptime=$up available_mib=$avail region_mib=$DEF max_region_mib=$WMAX"

tk() { read up _ </proc/uptime; T=${up%.*}${up#*.}; T=${T#0}; }

# The pattern: $1 bytes of random data at the start of every 4 KiB page, the rest zero (4096: all random).
mkpat() {
  rm -f /dev/shm/p
  if [ $1 -ge 4096 ]; then dd if=/dev/urandom of=/dev/shm/p bs=1M count=$((CH + 1)) 2>/dev/null; return; fi
  dd if=/dev/zero of=/dev/shm/p bs=1M count=$((CH + 1)) 2>/dev/null
  i=0; n=$(((CH + 1) * 256)); q=$((4096 / $1))
  while [ $i -lt $n ]; do
    dd if=/dev/urandom of=/dev/shm/p bs=$1 seek=$((i * q)) count=1 conv=notrunc 2>/dev/null; i=$((i + 1))
  done
}

# Copies from one pattern, shifted by one more 4 KiB page on every pass over the working set, so each page's
# random part differs from the previous pass (and from the pass before: two alternating patterns would make a
# page rewritten twice in a sampling window look clean). bs=64k keeps dd's own buffer from adding dirty pages.
# The working set is W MiB at offset OFF MiB of /dev/shm/x; C is the position in it.
wr() {
  k=$1
  [ -f /dev/shm/p ] || mkpat 4096
  while [ $k -gt 0 ]; do
    s=$CH; [ $s -gt $k ] && s=$k; [ $s -gt $((W - c)) ] && s=$((W - c))
    dd if=/dev/shm/p of=/dev/shm/x bs=64k seek=$(((OFF + c) * 16)) count=$((s * 16)) skip=$((pass % 256 * 4096)) \
       iflag=skip_bytes conv=notrunc 2>/dev/null
    c=$((c + s)); k=$((k - s))
    [ $c -ge $W ] && { c=0; pass=$((pass + 1)); }
  done
}

# A new working set: zero what was written (freed pages keep their content, and QEMU would send it), free it,
# and write the new working set once.
layout() {
  ws=$1; PH=$2; zeroed=0
  [ "$3" != "$CP" ] && { CP=$3; mkpat $((4096 - 4096 * CP / 100)); }
  if [ -f /dev/shm/x ]; then
    sz=$(stat -c %s /dev/shm/x); zeroed=$((sz / 1048576))
    dd if=/dev/zero of=/dev/shm/x bs=64k count=$((sz / 65536)) conv=notrunc 2>/dev/null; rm -f /dev/shm/x
  fi
  if [ "$ws" = - ]; then W=$DEF; fill=0; else W=$ws; [ $W -gt $WMAX ] && W=$WMAX; fill=$W; fi
  OFF=0; c=0; pass=0; win=0; NWIN=1; PLEFT=0
  [ $PH -gt 0 ] && [ $W -gt 0 ] && { NWIN=$((WMAX / W)); PLEFT=$PH; }
  [ $fill -gt 0 ] && wr $fill
  echo "GUEST-LAYOUT seq=$seq ws_mib=$W phase_s=$PH const_pct=$CP windows=$NWIN zeroed_mib=$zeroed filled_mib=$fill"
}

writer() {
  seq=""; lay=""; idx=0; left=0; kib=0; budget=0; new=""; tot=0; ticks=0; all=0; TPS=1; sub=0; CP=""
  W=$DEF; OFF=0; c=0; pass=0; win=0; NWIN=1; PH=0; PLEFT=0
  tk; next=$T
  while :; do
    if [ -f /dev/shm/plan ]; then
      read -r s rep ws ph tps cp steps </dev/shm/plan
      if [ "$s" != "$seq" ]; then
        seq=$s; plan="$steps"; idx=0; budget=0; sub=0; TPS=$tps; new=1
        [ "$ws $ph $cp" != "$lay" ] && { lay="$ws $ph $cp"; layout $ws $ph $cp; tk; next=$T; }
      fi
    fi
    if [ -n "$new" ]; then
      set -- $plan
      if [ $((2 * idx)) -ge $# ]; then
        if [ "$rep" = 1 ]; then idx=0; else idx=$(($# / 2 - 1)); fi
        last=1
      else last=""; fi
      shift $((2 * idx)); left=$1; kib=$2
      [ -n "$last" ] && [ "$rep" != 1 ] && left=0
      echo "GUEST-DIRTY seq=$seq step=$idx kib_s=$kib for_s=$left ticks_s=$TPS"
      new=""
    fi
    # budget in KiB/TPS: each tick adds the rate's KiB and writes the whole MiB it holds
    budget=$((budget + kib)); m=$((budget / (1024 * TPS))); budget=$((budget % (1024 * TPS)))
    [ $m -gt 0 ] && [ $W -gt 0 ] && wr $m
    tot=$((tot + m)); all=$((all + m)); [ $m -gt 0 ] && echo $all >/dev/shm/w
    sub=$((sub + 1))
    if [ $sub -ge $TPS ]; then
      sub=0; ticks=$((ticks + 1))
      [ $ticks = 10 ] && { echo "GUEST-WRITTEN mib_10s=$tot"; tot=0; ticks=0; }
      if [ "$left" -gt 0 ]; then left=$((left - 1)); [ $left = 0 ] && { idx=$((idx + 1)); new=1; }; fi
      if [ $PLEFT -gt 0 ]; then
        PLEFT=$((PLEFT - 1))
        [ $PLEFT = 0 ] && { PLEFT=$PH; win=$(((win + 1) % NWIN)); OFF=$((win * W)); c=0; }
      fi
    fi
    next=$((next + 100 / TPS)); tk; d=$((next - T))
    if [ $d -gt 0 ]; then usleep $((d * 10000)); elif [ $d -lt -100 ]; then next=$T; fi
  done
}

# Rewrites the first $1 MiB of /mnt/disk/churn, $2 KiB a second in 64 KiB blocks, synced to the disk.
dwriter() {
  n=0; blocks=$(($1 * 16)); per=$(($2 / 64)); [ $per -lt 1 ] && per=1
  while :; do
    [ $((n + per)) -gt $blocks ] && n=0
    dd if=/dev/urandom of=/mnt/disk/churn bs=64k seek=$n count=$per conv=notrunc,fsync 2>/dev/null
    n=$((n + per)); sleep 1
  done
}

reader() {
  stty -F /dev/ttyS1 raw -echo clocal 2>/dev/null
  PROG=""
  echo "GUEST-READY"
  while :; do
    while read -r cmd a rest; do
      case "$cmd" in
        plan) echo "$a $rest" >/dev/shm/plan.new && mv /dev/shm/plan.new /dev/shm/plan && echo "GUEST-CMD seq=$a";;
        ping) echo "GUEST-PONG $a";;
        disk) [ "$a" = "$DSEQ" ] && continue; DSEQ=$a; set -- $rest
              [ -n "$DW" ] && kill $DW 2>/dev/null; DW=""
              [ "$2" -gt 0 ] && { dwriter $1 $2 & DW=$!; }
              echo "GUEST-DISK seq=$a mib=$1 kib_s=$2 pid=$DW";;
        prog) [ -n "$PROG" ] && kill -TERM -$PROG 2>/dev/null; PROG=""
              [ -n "$rest" ] && { setsid $rest </dev/null & PROG=$!; }
              echo "GUEST-PROG seq=$a pid=$PROG";;
        seal) [ "$a" = "$SEALED" ] && continue; SEALED=$a; set -- $rest; f=$2/advisor-seal
              if [ "$1" -gt 0 ]; then dd if=/dev/urandom of=$f bs=1M count=$1 2>/dev/null; sync
              else echo 3 >/proc/sys/vm/drop_caches; fi
              s=$(sha256sum $f 2>/dev/null); echo "GUEST-SEAL seq=$a sha256=${s%% *}";;
      esac
    done </dev/ttyS1
    sleep 1
  done
}

# The heartbeat also carries the MiB the writer has written at its rate since boot (not the first writes of a
# new working set), so a host can tell the rate it really reached, e.g. while a migration slows the guest down.
( while :; do sleep 1; read up _ </proc/uptime; w=0; [ -f /dev/shm/w ] && read w </dev/shm/w
  echo "GUEST-HEARTBEAT uptime=$up written_mib=$w"; done ) &
writer &
reader &
while :; do sleep 3600; done
"""


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path


def init_script(region_mib: int) -> str:
    return (INIT.replace("@MODULES@", " ".join(MODULES + DISK_MODULES)).replace("@REGION@", str(region_mib))
            .replace("@CHUNK@", str(CHUNK_MIB)).replace("@MARGIN@", str(OOM_MARGIN_MIB)))


def ensure_image(cache: Path, region_mib: int, programs: bool = False,
                 disks: bool = False) -> tuple[GuestImage, bool]:
    """Return the cached image, building what is missing; the bool says whether anything was built.

    The packages are fetched only when `cache/parts` (and, with `programs`, `cache/programs`) is missing; the
    initramfs is rebuilt when /init changes. The image with programs adds PROGRAMS and their libraries (about
    32 MiB, which the guest holds in RAM: it has that much less available than the plain image).
    """
    parts = cache / "parts"
    built = False
    lacking = disks and any(not (parts / "modules" / f"{m}.ko").exists() for m in DISK_MODULES)
    if not (parts / "VERSION").exists() or lacking:
        fetch_parts(parts)
        built = True
    extra = cache / "programs"
    if programs and not (extra / "VERSION").exists():
        fetch_programs(extra)
        built = True
    script = init_script(region_mib)
    modules = [m for m in MODULES + DISK_MODULES if (parts / "modules" / f"{m}.ko").exists()]
    versions = ((parts / "VERSION").read_bytes() + ((extra / "VERSION").read_bytes() if programs else b"")
                + " ".join(modules).encode())
    stamp = hashlib.sha256(script.encode() + versions).hexdigest()
    name = "initrd-programs" if programs else "initrd"
    initrd = cache / f"{name}.gz"
    stamp_file = cache / f"{name}.sha256"
    if not initrd.exists() or not stamp_file.exists() or stamp_file.read_text().strip() != stamp:
        with tempfile.TemporaryDirectory(prefix="advisor-lab-initrd-") as tmp:
            tree = Path(tmp)
            for sub in ("bin", "lib/modules", "proc", "sys", "dev", "tmp"):
                (tree / sub).mkdir(parents=True)
            shutil.copy2(parts / "busybox", tree / "bin" / "busybox")
            for module in modules:
                shutil.copy2(parts / "modules" / f"{module}.ko", tree / "lib" / "modules" / f"{module}.ko")
            if programs:
                (tree / "usr" / "bin").mkdir(parents=True)
                (tree / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
                (tree / "lib64").mkdir()
                for binary in (extra / "bin").iterdir():
                    shutil.copy2(binary, tree / "usr" / "bin" / binary.name)
                for library in (extra / "lib").iterdir():
                    shutil.copy2(library, tree / "lib" / "x86_64-linux-gnu" / library.name)
                # the interpreter the binaries name (PT_INTERP)
                shutil.copy2(extra / "lib" / "ld-linux-x86-64.so.2", tree / "lib64" / "ld-linux-x86-64.so.2")
            (tree / "init").write_text(script)
            (tree / "init").chmod(0o755)
            write_initramfs(tree, initrd)
        stamp_file.write_text(stamp + "\n")
        built = True
    return GuestImage(kernel=parts / "vmlinuz", initrd=initrd), built


def ram_override_args(memory_mib: int, pad_kib: int | None = None) -> list[str]:
    """QEMU arguments that replace libvirt's guest RAM backend by one `pad_kib` larger (see RAM_PAD_KIB).

    Given after libvirt's own: the later `-m` wins and `-machine` options merge, so the machine uses the new
    backend; libvirt's `pc.ram` backend is created but never mapped (no host memory is touched) nor migrated.
    Source and target get the same arguments from the domain XML, so their RAM layouts match.
    """
    pad = RAM_PAD_KIB if pad_kib is None else pad_kib
    if pad <= 0:
        return []
    kib = memory_mib * 1024 + pad
    return ["-m", f"{kib}k", "-object", f"memory-backend-ram,id=pc.ram.lab,size={kib * 1024}",
            "-machine", "memory-backend=pc.ram.lab"]


def domain_xml(name: str, image: GuestImage, memory_mib: int, disk: str = "") -> str:
    """A transient TCG domain: ttyS0 to a file in the daemon's own /var/log/libvirt, ttyS1 a pty for commands.

    `type='qemu'` always: /dev/kvm here is kvm-pvm, which stock kernels cannot run on (FACTS). The command channel
    is a pty rather than a unix socket because, during a migration on one machine, source and destination QEMU
    would both try to own the same socket path. The guest RAM is RAM_PAD_KIB larger than `memory_mib` (QEMU
    arguments at the end), or migrations lose guest writes under TCG (see RAM_PAD_KIB). `disk`, when given, is a
    raw file the guest sees as /dev/vda (advisor.lab.disks).
    """
    drive = (f"\n    <disk type='file' device='disk'><driver name='qemu' type='raw'/>"
             f"<source file={quoteattr(disk)}/><target dev='vda' bus='virtio'/></disk>" if disk else "")
    log = f"/var/log/libvirt/qemu/{escape(name)}-serial.log"
    args = "".join(f"\n    <qemu:arg value={quoteattr(arg)}/>" for arg in ram_override_args(memory_mib))
    qemu_ns = " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'" if args else ""
    commandline = f"\n  <qemu:commandline>{args}\n  </qemu:commandline>" if args else ""
    return f"""<domain type='qemu'{qemu_ns}>
  <name>{escape(name)}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(str(image.kernel))}</kernel>
    <initrd>{escape(str(image.initrd))}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>{drive}
    <serial type='file'>
      <source path='{log}' append='off'/>
      <target port='0'/>
    </serial>
    <serial type='pty'>
      <target port='1'/>
    </serial>
    <console type='file'>
      <source path='{log}' append='off'/>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='virtio'>
      <stats period='1'/>
    </memballoon>
  </devices>{commandline}
</domain>
"""


def plan_command(seq: int, steps: list[tuple[int, int]], repeat: bool, working_set_mib: int | None = None,
                 phase_s: int = 0, continuous: bool = False, constant_pct: int = 0) -> bytes:
    """The line the guest reads on ttyS1: `plan SEQ REPEAT WS PHASE_S TICKS CONST_PCT SECONDS KIB_S ...` (INIT).

    SECONDS 0 is "for ever"; `working_set_mib` None is the default region, 0 none; `phase_s` > 0 moves the working
    set to the next window every that many seconds; `continuous` spreads each second's MiB over 10 ticks instead
    of one burst; `constant_pct` of every page stays zero (one of CONSTANT_PCTS).
    """
    if (working_set_mib is not None and working_set_mib < 0) or phase_s < 0:
        raise ValueError(f"negative working set or phase: {working_set_mib}, {phase_s}")
    if constant_pct not in CONSTANT_PCTS:
        raise ValueError(f"constant share {constant_pct}% is not one of {CONSTANT_PCTS}")
    body = " ".join(f"{seconds} {kib_s}" for seconds, kib_s in steps)
    ws = "-" if working_set_mib is None else str(working_set_mib)
    return f"plan {seq} {int(repeat)} {ws} {phase_s} {10 if continuous else 1} {constant_pct} {body}\n".encode()


def program_command(seq: int, argv: list[str]) -> bytes:
    """`prog SEQ ARGV...`: stop the program the guest runs, and start `argv` (none: just stop). Plain words only,
    since the guest's shell splits the line on blanks."""
    bad = [arg for arg in argv if not re.fullmatch(r"[A-Za-z0-9_.,:=+/-]+", arg)]
    if bad or (argv and argv[0] not in PROGRAMS):
        raise ValueError(f"not a program of the guest image or not plain words: {argv}")
    return " ".join(["prog", str(seq), *argv]).encode() + b"\n"


def disk_command(seq: int, mib: int, kib_s: int) -> bytes:
    """`disk SEQ MIB KIB_S`: rewrite the first MIB MiB of a file on the guest's disk at KIB_S KiB/s (0: stop)."""
    if mib < 1 or kib_s < 0:
        raise ValueError(f"a disk writer needs at least 1 MiB and a rate >= 0 (got {mib}, {kib_s})")
    return f"disk {seq} {mib} {kib_s}\n".encode()
