"""verify/confine.py on this machine's kernel: a confined process reads what it must, writes only its private
folder, cannot read the hidden folders, and closes every inherited descriptor it is not given."""

import os

import pytest

from verify import confine

pytestmark = pytest.mark.skipif(confine.landlock_abi() < 1, reason="this kernel has no Landlock")


def _in_child(fn) -> int:
    """Run fn() in a forked child (confinement is irrevocable); its exit status: 0 when fn returned."""
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - any failure is the child's non-zero status
            os.write(2, f"{type(e).__name__}: {e}\n".encode())
            os._exit(1)
        os._exit(0)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_confined_process_sees_only_what_it_is_given(tmp_path):
    hidden, private, lockfile = tmp_path / "hidden", tmp_path / "private", tmp_path / "dev.lock"
    hidden.mkdir()
    private.mkdir()
    (hidden / "reference.pt").write_text("answers")
    lockfile.write_text("")

    def probe():
        assert confine.apply(str(private), [str(hidden)], [str(lockfile)]) == "landlock"
        for attempt in (
            lambda: open(hidden / "reference.pt").read(),
            lambda: os.listdir(hidden),
            lambda: open(hidden / "new", "w"),
            lambda: open(tmp_path / "beside", "w"),
        ):
            try:
                attempt()
            except PermissionError:
                continue
            raise AssertionError("a hidden or read-only path was reachable")
        (private / "mine").write_text("ok")  # its own folder: full access
        with open(lockfile, "r+"):  # an existing lock file: read and write
            pass
        with open("/etc/hostname"):  # everything else: read
            pass

    assert _in_child(probe) == 0


def test_close_fds_keeps_only_what_it_is_told():
    keep_r, keep_w = os.pipe()
    other_r, other_w = os.pipe()

    def probe():
        confine.close_fds({keep_w})
        os.write(keep_w, b"x")
        for fd in (keep_r, other_r, other_w):
            try:
                os.fstat(fd)
            except OSError:
                continue
            raise AssertionError(f"descriptor {fd} survived")

    assert _in_child(probe) == 0
    for fd in (keep_r, keep_w, other_r, other_w):
        os.close(fd)


def test_a_writable_folder_takes_new_subfolders_and_renames(tmp_path):
    """The shared kernel cache (verify.kernel_cache=shared) is a writable folder inside a hidden one:
    Triton creates a subfolder per kernel and renames temp files into it."""
    hidden, private = tmp_path / "drt_verifier", tmp_path / "private"
    cache = hidden / "kernel_cache"
    cache.mkdir(parents=True)
    private.mkdir()

    def probe():
        assert confine.apply(str(private), [str(hidden)], [str(cache)]) == "landlock"
        (cache / "KEY").mkdir()
        (cache / "KEY" / "tmp.cubin").write_text("x")
        os.replace(cache / "KEY" / "tmp.cubin", cache / "KEY" / "kernel.cubin")
        assert (cache / "KEY" / "kernel.cubin").read_text() == "x"
        try:
            os.listdir(hidden)
        except PermissionError:
            return
        raise AssertionError("the hidden folder around the cache stayed readable")

    assert _in_child(probe) == 0
