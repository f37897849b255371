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


NGINX_CONF = """\
daemon off;
worker_processes 1;
worker_rlimit_nofile 65535;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  client_max_body_size 0;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
{listens}
{locations}
  }}
}}
"""


def start_nginx(harness, work, ports, locations):
    """Starts one nginx worker serving `locations` (nginx config lines) on every port in
    `ports` from the folder `work`; returns its harness.Proc once the last port accepts."""
    for d in ("body", "proxy", "fcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    # nginx's worker runs as another user: the folder must be readable by it.
    os.chmod(work, 0o755)
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(d=work, locations=locations,
                                  listens="\n".join("    listen 127.0.0.1:%d;" % p for p in ports)))
    proc = harness.Proc("nginx", ["nginx", "-p", work, "-c", conf], os.path.join(work, "nginx.log"))
    harness.wait_until(lambda: harness.tcp_connectable("127.0.0.1", ports[-1]), "nginx",
                       procs=[proc])
    return proc
