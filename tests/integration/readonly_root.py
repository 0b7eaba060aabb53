"""A read-only root view of this machine for one process, run as an unprivileged user.

``sandbox_command(paths, argv)`` gives a command that, run as root, enters a new mount
namespace, builds a root of its own (a tmpfs, read-only once built) that shows only ``paths``,
each bind-mounted read-only at its own path with every symbolic link on the way recreated, plus
``/dev``, ``/proc``, ``/sys`` and a writable ``/tmp`` (what a container with
``readOnlyRootFilesystem`` has), then chroots there, drops to uid/gid 65534 and execs ``argv``.

Nothing is assumed about where Python lives: ``interpreter_paths()`` derives what the
interpreter needs from ``sys.prefix``, ``sys.base_prefix``, ``sys.exec_prefix``, ``sys.path``,
the folders of the imported modules, the shared objects a running process has mapped, the ELF
interpreter the executable names and the loader's cache.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

NOBODY = 65534

# Runs as root under the test's interpreter; its one argument is the JSON spec.
LAUNCHER = r"""
import ctypes, json, os, sys
spec = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 32, 4096, 16384, 1 << 18)

def mount(source, target, fstype, flags, data=None):
    args = [None if v is None else v.encode() for v in (source, target, fstype)]
    if libc.mount(*args, flags, None if data is None else data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")

CLONE_NEWNS = 0x00020000
if libc.unshare(CLONE_NEWNS) != 0:
    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here leaks to the host
root = spec["root"]
mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
os.makedirs(root + "/tmp")  # writable, like an emptyDir; before the binds that may lie in it
mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
for link, target in spec["links"]:
    os.makedirs(os.path.dirname(root + link), exist_ok=True)
    os.symlink(target, root + link)
for path, writable, recursive in spec["binds"]:
    inside = root + path
    if os.path.isdir(path):
        os.makedirs(inside, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        open(inside, "a").close()
    mount(path, inside, None, MS_BIND | (MS_REC if recursive else 0))
    if not writable:
        mount(None, inside, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
os.chroot(root)
os.chdir("/")
os.setgroups([])
os.setgid(spec["uid"])
os.setuid(spec["uid"])
try:
    open("/probe", "w").close()
    root_writable = True
except OSError:
    root_writable = False
prefix_writable = os.access(sys.prefix, os.W_OK)
print(json.dumps({"sandbox": {"uid": os.getuid(), "gid": os.getgid(),
                              "root_writable": root_writable,
                              "prefix_writable": prefix_writable}}), file=sys.stderr, flush=True)
os.execve(spec["argv"][0], spec["argv"], spec["env"])
"""

# Printed by a probe under the interpreter the server will run: where it takes its code from.
PROBE = r"""
import json, sys
import modelops.cli, modelops.serving.server  # what `modelops serve` imports at start-up
folders = sorted({m.__file__.rsplit("/", 1)[0] for m in list(sys.modules.values())
                  if getattr(m, "__file__", None)})
print(json.dumps({"executable": sys.executable, "prefixes": [sys.prefix, sys.base_prefix,
                  sys.exec_prefix, sys.base_exec_prefix], "path": sys.path,
                  "module_folders": folders}))
"""


def elf_interpreter(executable: str) -> str | None:
    """The program interpreter (PT_INTERP) an ELF executable names, e.g. the dynamic loader."""
    with open(executable, "rb") as file:
        data = file.read()
    if data[:4] != b"\x7fELF":
        return None
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is64:
        (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(endian + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x2A)
    for i in range(phnum):
        at = phoff + i * phentsize
        (p_type,) = struct.unpack_from(endian + "I", data, at)
        if p_type != 3:  # PT_INTERP
            continue
        if is64:
            (offset,) = struct.unpack_from(endian + "Q", data, at + 8)
            (size,) = struct.unpack_from(endian + "Q", data, at + 32)
        else:
            (offset,) = struct.unpack_from(endian + "I", data, at + 4)
            (size,) = struct.unpack_from(endian + "I", data, at + 16)
        return data[offset : offset + size].rstrip(b"\0").decode()
    return None


def mapped_objects(pid: int) -> set[str]:
    """The files (shared objects) a running process has mapped."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/") and not fields[5].endswith(")"):
            found.add(fields[5])
    return found


def interpreter_paths(probe: dict[str, object], shared_objects: Iterable[str]) -> set[str]:
    """Every path the interpreter and the imported code need, from what the probe reported."""
    wanted = {str(probe["executable"]), os.path.realpath(str(probe["executable"]))}
    wanted.update(str(p) for p in probe["prefixes"])  # type: ignore[attr-defined]
    wanted.update(str(p) for p in probe["path"] if p)  # type: ignore[attr-defined]
    wanted.update(str(p) for p in probe["module_folders"])  # type: ignore[attr-defined]
    for shared in shared_objects:
        if os.path.isfile(shared) and not shared.startswith(("/dev/", "/proc/", "/sys/")):
            wanted.add(os.path.dirname(shared))
    loader = elf_interpreter(os.path.realpath(str(probe["executable"])))
    if loader:
        wanted.add(loader)
    if os.path.exists("/etc/ld.so.cache"):
        wanted.add("/etc/ld.so.cache")
    return {p for p in wanted if os.path.lexists(p)}


def plan(paths: Iterable[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Symbolic links to recreate and real paths to bind so that each of ``paths`` resolves
    inside the new root as it does here; a path under one already bound is not bound again."""
    links: dict[str, str] = {}
    real: set[str] = set()

    def walk(path: str, depth: int = 0) -> None:
        if depth > 40:
            raise RuntimeError(f"too many symbolic links resolving {path}")
        parts = Path(os.path.normpath(path)).parts
        current = "/"
        for i, part in enumerate(parts[1:], start=1):
            current = os.path.join(current, part)
            if os.path.islink(current):
                target = os.readlink(current)
                links[current] = target
                resolved = os.path.normpath(os.path.join(os.path.dirname(current), target))
                walk(os.path.join(resolved, *parts[i + 1 :]), depth + 1)
                return
        real.add(current)

    for path in paths:
        walk(path)
    if "/" in real:
        raise ValueError("refusing to show the whole host root")
    binds: list[str] = []
    for path in sorted(real, key=lambda p: (p.count("/"), p)):
        if not any(path == b or path.startswith(b.rstrip("/") + "/") for b in binds):
            binds.append(path)
    # A link under a bound folder is there already (the host's own).
    kept = [
        (link, target)
        for link, target in sorted(links.items())
        if not any(link.startswith(b.rstrip("/") + "/") for b in binds)
    ]
    return kept, binds


def sandbox_command(
    root: Path, paths: Iterable[str], argv: Sequence[str], env: dict[str, str]
) -> list[str]:
    """The command (run it as root) that runs ``argv`` as uid 65534 in the read-only view."""
    links, binds = plan(paths)
    spec = {
        "root": str(root),
        "links": links,
        "binds": [(p, False, False) for p in binds]
        + [("/dev", True, True), ("/proc", True, True), ("/sys", False, True)],
        "uid": NOBODY,
        "argv": list(argv),
        "env": env,
    }
    return [sys.executable, "-I", "-c", LAUNCHER, json.dumps(spec)]
