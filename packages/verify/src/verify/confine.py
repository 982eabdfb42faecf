"""Confine a candidate's process with the kernel's own mechanisms: what it may read, write and signal.

A candidate process runs as the same user as the verifier, so file permissions alone hide nothing from
it. Where the kernel offers Landlock (Linux 5.13+, reached through its three system calls by ctypes),
the process restricts itself before any candidate code runs, irrevocably and for every descendant:

- read and execute everywhere except the `hidden` folders (the verifier's folders, which hold the
  reference outputs and every job's files, and the system temp folder, where other verifiers keep theirs);
- read and write only in its `private` folder (its own task files, payloads, Triton cache), to the
  files named in `writable` (the GPU lock files, which exist before) and beneath the folders named there
  (the kernel cache, only with `verify.kernel_cache=shared`);
- no ptrace of, and no /proc/PID/mem or /proc/PID/fd of, any process outside its domain (always part
  of Landlock); with ABI 6+ (Linux 6.12) also no signal to any process outside its domain, and no
  connection to an abstract unix socket outside it.

Without Landlock (an older kernel, or one built without it) `apply` returns "none" and the process runs
unconfined: the trusted side still decides every verdict from references it loads itself and checks
their digest (a rewritten reference file is a rejection, not an answer key), but a candidate could then
read the reference file of its task. The verifier reports the mode (`Verifier.confinement`) and warns.
"""

from __future__ import annotations

import ctypes
import os
import platform

# syscall numbers of landlock_create_ruleset / add_rule / restrict_self (the same on every architecture
# that uses the generic table: x86_64 and aarch64)
_CREATE, _ADD, _RESTRICT = 444, 445, 446
_PR_SET_NO_NEW_PRIVS = 38
_RULE_PATH_BENEATH = 1
_VERSION = 1  # landlock_create_ruleset flag: return the ABI version

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
# rights every ABI handles, then what ABI 2 (REFER) and 3 (TRUNCATE) add; ABI 5's IOCTL_DEV is left
# unhandled so that device files (/dev/nvidia*) keep working as before
_FS_V1 = (1 << 13) - 1
_FS_BY_ABI = {1: _FS_V1, 2: _FS_V1 | 1 << 13, 3: _FS_V1 | 1 << 13 | 1 << 14}
_READ = _EXECUTE | _READ_FILE | _READ_DIR
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | 1 << 14  # the rights that apply to a file, not a folder
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where there is none (or not on Linux)."""
    if platform.system() != "Linux":
        return 0
    try:
        abi = _libc().syscall(_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(abi, 0)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _read_roots(hidden: list[str]) -> list[str]:
    """Folders and files to grant read access beneath: all of `/` but the `hidden` trees (a folder that
    holds a hidden one is granted entry by entry)."""
    out = []

    def walk(d: str) -> None:
        if any(_inside(d, h) for h in hidden):
            return
        if os.path.islink(d):  # a rule follows the link: skip one that leads into (or above) a hidden tree
            real = os.path.realpath(d)
            if any(_inside(real, h) or _inside(h, real) for h in hidden):
                return
        if not any(_inside(h, d) for h in hidden):
            out.append(d)
            return
        try:
            entries = os.listdir(d)
        except OSError:
            return
        for name in entries:
            walk(os.path.join(d, name))

    walk("/")
    return out


def apply(private: str, hidden: list[str], writable: list[str] = ()) -> str:
    """Confine this process (and everything it starts) as the module docstring says. Returns "landlock"
    or "none" (the kernel has no Landlock). Raises OSError when Landlock exists but refuses the rules,
    so that a job never runs less confined than the machine allows without saying so."""
    abi = landlock_abi()
    if abi < 1:
        return "none"
    libc = _libc()
    handled = _FS_BY_ABI[min(abi, 3)]
    attr = _RulesetAttr(
        handled_access_fs=handled, scoped=(_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0
    )
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    hidden = [os.path.realpath(h) for h in hidden]
    rules = [(p, _READ) for p in _read_roots(hidden)]
    # a writable folder (the shared kernel cache) needs every right: Triton writes its entries as temp files
    # renamed into new subfolders; a writable file (a lock) only reading and writing
    rules += [(os.path.realpath(p), handled if os.path.isdir(p) else _READ | _WRITE_FILE) for p in writable]
    rules.append((os.path.realpath(private), handled))
    try:
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # gone since it was listed (a file of another process), or unreadable
            try:
                if not os.path.isdir(path):
                    access &= _FILE_RIGHTS
                rule = _PathBeneath(allowed_access=access & handled, parent_fd=fd)
                if (
                    libc.syscall(_ADD, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0))
                    < 0
                ):
                    err = ctypes.get_errno()
                    raise OSError(err, f"landlock_add_rule({path}): {os.strerror(err)}")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_RESTRICT, ruleset, ctypes.c_uint32(0)) < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"landlock_restrict_self: {os.strerror(err)}")
    finally:
        os.close(ruleset)
    return "landlock"


def private_environment(private: str, kernel_cache: str | None = None) -> None:
    """Point every cache and temp folder the candidate's libraries write to into `private` (the only
    folder it may write, with `kernel_cache` when given: Triton's and Inductor's caches shared across
    candidates), so that nothing it leaves there reaches another candidate."""
    import tempfile

    caches = kernel_cache or private
    for var, root, sub in (
        ("TMPDIR", private, ""),
        ("TRITON_CACHE_DIR", caches, "triton"),
        ("TORCHINDUCTOR_CACHE_DIR", caches, "inductor"),
        ("XDG_CACHE_HOME", private, "cache"),
    ):
        path = os.path.join(root, sub) if sub else root
        os.makedirs(path, exist_ok=True)
        os.environ[var] = path
    os.environ["CUDA_CACHE_DISABLE"] = "1"  # the driver's JIT cache lives in the home folder
    tempfile.tempdir = private


def close_fds(keep: set[int]) -> None:
    """Close every inherited descriptor but stdin/stdout/stderr and `keep`: a forked candidate must not
    hold the server's pipes (the result channel of every other job)."""
    fds = sorted(fd for fd in _open_fds() if fd > 2 and fd not in keep)
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _open_fds() -> list[int]:
    try:
        return [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 1024))


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphaned descendants are re-parented to this process (not init), so it can find and kill them."""
    if platform.system() == "Linux":
        _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def children(pid: int) -> list[int]:
    """Direct children of `pid` (of any of its threads), from /proc (empty where /proc is not readable)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return out


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (children first)."""
    out, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out
