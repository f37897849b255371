"""Shared pieces of the benchmark scripts: process CPU time and the report header lines."""
import datetime
import os
import platform
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (from /proc)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def commit():
    """Short HEAD, marked when tracked files other than bench/results differ from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":!bench/results"], cwd=ROOT, capture_output=True, text=True).stdout
    return head + (" (with uncommitted changes)" if dirty.strip() else "")


def header(title, command):
    """The lines every report starts with: title, command, commit, date, machine."""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "unknown")
    return ["# " + title, "",
            "- command: `%s`" % command,
            "- commit: %s" % commit(),
            "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "- machine: %s, %d cores, %s" % (cpu, os.cpu_count(), platform.platform())]
