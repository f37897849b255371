"""Running out of file descriptors: a server whose accept() fails with EMFILE must neither spin
a core nor flood its log, and must accept again once descriptors are free. Checked on modelsim
(net/accept_loop.h, which epp's admin server uses too) started under `prlimit --nofile`."""

import os
import shutil
import socket
import time

import pytest

import harness

NOFILE = 48
CLIENTS = 80  # more connections than descriptors; the kernel queues them in the backlog


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


@pytest.fixture
def limited_modelsim(tmp_path):
    if not shutil.which("prlimit"):
        pytest.skip("prlimit (util-linux) not installed")
    if not os.access(harness.modelsim_bin(), os.X_OK):
        pytest.skip("modelsim binary not found")
    port = harness.free_port()
    argv = ["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), harness.modelsim_bin(),
            "--host", "127.0.0.1", "--port", str(port)]
    proc = harness.Proc("modelsim-nofile", argv, str(tmp_path / "modelsim.log"))
    try:
        harness.wait_until(
            lambda: harness.request(port, "GET", "/health", timeout=2)[0] == 200,
            "modelsim /health", procs=[proc])
        yield proc, port
    finally:
        proc.stop()


def test_accept_failures_pause_and_recover(limited_modelsim):
    proc, port = limited_modelsim
    clients = []
    try:
        for _ in range(CLIENTS):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        # Descriptors are exhausted now; every further accept fails with EMFILE.
        harness.wait_until(lambda: "accept failed" in proc.log_text(),
                           "the first failed accept in the log", procs=[proc], timeout=10)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(2.0)
        spent = cpu_seconds(proc.pid) - cpu0
        elapsed = time.monotonic() - t0
        # A loop that re-armed the accept at once would burn the whole 2 s of a core.
        assert spent < 0.5 * elapsed, "modelsim used %.2f s of CPU in %.2f s" % (spent, elapsed)
        log = proc.log_text()
        assert log.count("accept failed") == 1, log[-2000:]
        assert "Too many open files" in log, log[-2000:]
    finally:
        for c in clients:
            c.close()
    # Descriptors come back as the server sees its clients go: it serves again.
    harness.wait_until(
        lambda: harness.request(port, "GET", "/health", timeout=2)[0] == 200,
        "modelsim /health after the clients left", procs=[proc], timeout=20)
    harness.wait_until(lambda: "accepting again" in proc.log_text(),
                       "the recovery line in the log", procs=[proc], timeout=10)
