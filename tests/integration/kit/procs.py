"""Processes for integration tests: start one with its own log file, remember its PID, wait for it
to be ready (TCP port, log line, predicate) with a deadline, and stop it by PID.

Every process is started in its own session (`start_new_session`), so its PID is also the id of its
process group: `stop()` sends SIGTERM to that group (the server and the helpers it forked, e.g.
ejabberdctl -> erl -> beam.smp), waits until the whole group is gone, and escalates to SIGKILL after a
deadline. Nothing is ever killed by name.

`Procs` is the owner of everything a test starts: a temporary directory, the processes, and any
other cleanup (it wraps a `contextlib.ExitStack`). Use it as a context manager; on an exception it
prints the tail of every log it knows before stopping everything in reverse order.

If the test process dies without cleaning up (SIGKILL, a crash, a broken pipe while printing), a
small watchdog process (one per test process, started with the first server) notices its parent's
pipe closing and stops every process group still registered with it: SIGTERM, then SIGKILL. An
atexit hook closes every open Procs on a normal interpreter exit too.
"""
import atexit
import contextlib
import ipaddress
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

DEFAULT_STOP_TIMEOUT = 10.0
TAIL_LINES = 40

# Ports are chosen below the kernel's ephemeral range (32768+), so an outgoing connection made
# between "this port is free" and "the server binds it" cannot take it.
PORT_RANGE = (20000, 32000)
_ports_given = set()

# Every live Procs, so a test runner can dump all logs when a test fails; every Proc not yet
# stopped, so a cleanup interrupted half-way (a signal during stop()) can be finished at exit.
_active = []
_unstopped = []

# Servers may be started from several threads at once (tests start independent servers in
# parallel): the bookkeeping below (watchdog pipe, lists, ExitStack) is done under this lock.
_lock = threading.RLock()


class KitError(Exception):
    """A kit operation failed (the message says what and, where it helps, the log tail)."""


class Timeout(KitError):
    pass


class ProcessDied(KitError):
    pass


def is_root():
    return os.geteuid() == 0


def check_loopback(addr):
    """Raise unless `addr` is a loopback address (127.0.0.0/8 or ::1): tests never use others."""
    if not ipaddress.ip_address(addr).is_loopback:
        raise ValueError(f"{addr} is not a loopback address; the integration tests use loopback only")
    return addr


def wait_until(predicate, timeout, what, *, interval=0.05, proc=None):
    """Call `predicate` until it returns a true value (returned) or `timeout` seconds pass (Timeout).
    If `proc` exits meanwhile, raise ProcessDied at once with the tail of its log."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and not proc.alive():
            raise ProcessDied(f"{proc.name} (pid {proc.pid}) exited with status {proc.returncode} "
                              f"while waiting for {what}\n{proc.tail()}")
        if time.monotonic() >= end:
            extra = f"\n{proc.tail()}" if proc is not None else ""
            raise Timeout(f"timed out after {timeout:.1f}s waiting for {what}{extra}")
        time.sleep(interval)


def port_open(host, port, timeout=0.5):
    """True if a TCP connect to host:port succeeds now."""
    check_loopback(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((host, port))
            return True
        except OSError:
            return False


def wait_port(host, port, timeout=15.0, proc=None):
    """Wait until host:port accepts TCP connections (and `proc`, if given, is still running)."""
    return wait_until(lambda: port_open(host, port), timeout, f"{host}:{port} to accept",
                      interval=0.05, proc=proc)


def free_port(host="127.0.0.1", *, udp=False):
    """A port in PORT_RANGE that is free for TCP (and UDP if `udp`) on `host` right now and was not
    handed out before in this process."""
    check_loopback(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
    for _ in range(500):
        port = random.randrange(*PORT_RANGE)
        if port in _ports_given:
            continue
        ok = True
        for kind in kinds:
            with socket.socket(family, kind) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    ok = False
                    break
        if ok:
            _ports_given.add(port)
            return port
    raise KitError(f"no free port found on {host}")


def tail_file(path, lines=TAIL_LINES):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * lines))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(data.splitlines()[-lines:])


def _stat(pid):
    """(ppid, starttime) of a live pid from /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19])


def group_members(pgid):
    """Pids of the live (non-zombie) processes whose process group is `pgid`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = data[data.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(name))
    return found


def descendants(pid):
    """{pid: starttime} of every live descendant of `pid` (from /proc)."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st:
                table[int(name)] = st
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, start) in table.items():
            if ppid == parent and child not in found:
                found[child] = start
                frontier.append(child)
    return found


def _parse_addr(hexaddr):
    ip_hex, port_hex = hexaddr.split(":")
    raw = bytes.fromhex(ip_hex)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:   # four little-endian 32-bit words
        ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return ip, int(port_hex, 16)


def socket_inodes(pids):
    """{socket inode: pid} of the sockets `pids` hold open (from /proc)."""
    inodes = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    return inodes


def established_connections(pid):
    """{(local (ip, port), remote (ip, port))} of the established IPv4 TCP connections of `pid`."""
    inodes = socket_inodes([pid])
    found = set()
    with open("/proc/net/tcp") as f:
        for row in f.read().splitlines()[1:]:
            cols = row.split()
            if cols[3] == "01" and cols[9] in inodes:     # ESTABLISHED
                found.add((_parse_addr(cols[1]), _parse_addr(cols[2])))
    return found


def listening_sockets(pids):
    """[(proto, ip, port, pid)] of the TCP listeners and UDP sockets held by `pids` (from /proc;
    no `ss` needed). For checks like "this server listens on loopback only"."""
    inodes = socket_inodes(pids)
    found = []
    for proto, path in (("tcp", "/proc/net/tcp"), ("tcp6", "/proc/net/tcp6"),
                        ("udp", "/proc/net/udp"), ("udp6", "/proc/net/udp6")):
        try:
            with open(path) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if proto.startswith("tcp") and cols[3] != "0A":      # LISTEN
                continue
            if cols[9] in inodes:
                ip, port = _parse_addr(cols[1])
                found.append((proto, ip, port, inodes[cols[9]]))
    return found


def reap_strays(strays, name, timeout=5.0):
    """After a process group is gone: SIGTERM, then SIGKILL, the given descendants (pid ->
    starttime, so a reused pid is never touched) that are still alive."""
    def alive():
        return [p for p, start in strays.items() if (_stat(p) or (None, None))[1] == start]
    left = alive()
    if not left:
        return
    for p in left:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + timeout
    while alive() and time.monotonic() < end:
        time.sleep(0.05)
    for p in alive():
        sys.stderr.write(f"kit: {name}: descendant pid {p} survived SIGTERM, sending SIGKILL\n")
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- the watchdog --------------------------------------------------------------------------------
_WATCHDOG_CODE = r"""
import os, shutil, signal, sys, time
groups, dirs = {}, {}
for line in sys.stdin:
    op, _, arg = line.rstrip("\n").partition(" ")
    if op == "+":
        groups[int(arg)] = True
    elif op == "-":
        groups.pop(int(arg), None)
    elif op == "d+":
        dirs[arg] = True
    elif op == "d-":
        dirs.pop(arg, None)
def alive(g):
    try:
        os.killpg(g, 0)
        return True
    except OSError:
        return False
left = [g for g in groups if alive(g)]
for g in left:
    sys.stderr.write("kit watchdog: test process gone, stopping process group %d\n" % g)
    try: os.killpg(g, signal.SIGTERM)
    except OSError: pass
end = time.monotonic() + 10
while time.monotonic() < end and any(alive(g) for g in left):
    time.sleep(0.1)
for g in left:
    try: os.killpg(g, signal.SIGKILL)
    except OSError: pass
if not os.environ.get("KIT_KEEP"):
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
"""
_watchdog = None


def _watch(op, arg):
    """Tell the watchdog about a process group we own ("+") or have stopped ("-"), or a temp dir
    to remove ("d+") or already removed ("d-")."""
    global _watchdog
    with _lock:
        _watch_locked(op, arg)


def _watch_locked(op, arg):
    global _watchdog
    try:
        if _watchdog is None:
            if op not in ("+", "d+"):
                return
            _watchdog = subprocess.Popen(["/usr/bin/python3", "-c", _WATCHDOG_CODE], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, text=True, start_new_session=True,
                                         close_fds=True)
        _watchdog.stdin.write(f"{op} {arg}\n")
        _watchdog.stdin.flush()
    except (OSError, ValueError):
        pass


def _close_all_at_exit():
    for procs in list(_active):
        try:
            procs.close()
        except BaseException as e:      # never mask the real exit
            sys.stderr.write(f"kit: cleanup at exit failed: {e!r}\n")
    for proc in list(_unstopped):
        try:
            proc.stop()
        except BaseException as e:
            sys.stderr.write(f"kit: stopping {proc.name} at exit failed: {e!r}\n")
    if _watchdog is not None:
        try:
            _watchdog.stdin.close()
            _watchdog.wait(15)
        except Exception:
            pass


atexit.register(_close_all_at_exit)


class LogWatch:
    """Mixin for a server with `log_path` and `proc`: read its log from a mark, wait for a line."""

    def log_mark(self):
        """The current end of the log; pass it as `since` to look only at what comes after."""
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=10.0, since=0):
        """Wait until regex `pattern` appears in the log after `since`; returns the match."""
        import re
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.log_text(since)), timeout,
                          f"/{pattern}/ in {self.log_path}", interval=0.05, proc=getattr(self, "proc", None))


class Proc:
    """One started process (its session/process group has the same id as `pid`)."""

    def __init__(self, name, argv, log_path, popen, stop_timeout, extra_logs=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.popen = popen
        self.stop_timeout = stop_timeout
        self.extra_logs = dict(extra_logs or {})   # label -> path, shown by tail()
        self.stopped = False

    @property
    def pid(self):
        return self.popen.pid

    @property
    def returncode(self):
        return self.popen.poll()

    def alive(self):
        return self.popen.poll() is None

    def add_log(self, label, path):
        self.extra_logs[label] = path

    def _group_alive(self):
        """Any live (non-zombie) member of our process group? (Zombies reparented to a PID 1 that
        reaps slowly would keep killpg(pid, 0) succeeding.)"""
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return bool(group_members(self.pid))

    def _signal_group(self, sig):
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout=None):
        """SIGTERM the process group, wait (deadline) until it is gone, else SIGKILL it; then the
        same for any descendant that had left the group (Erlang's port programs call setsid).
        Returns the exit status of the process we started. Safe to call twice."""
        timeout = self.stop_timeout if timeout is None else timeout
        if self.stopped:
            return self.popen.poll()
        strays = descendants(self.pid)
        self._signal_group(signal.SIGTERM)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.popen.poll()
            if self.popen.returncode is not None and not self._group_alive():
                break
            time.sleep(0.02)
        else:
            sys.stderr.write(f"kit: {self.name} (pid {self.pid}) still running {timeout:.0f}s after "
                             f"SIGTERM, sending SIGKILL\n")
            self._signal_group(signal.SIGKILL)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                pass
            wait_until(lambda: not self._group_alive(), 5, f"{self.name} group to die after SIGKILL")
        reap_strays(strays, self.name)
        self.stopped = True
        if self in _unstopped:
            _unstopped.remove(self)
        _watch("-", self.pid)
        return self.popen.returncode

    def tail(self, lines=TAIL_LINES):
        parts = [f"--- {self.name}: {self.log_path} (last {lines} lines) ---", tail_file(self.log_path, lines)]
        for label, path in self.extra_logs.items():
            if os.path.exists(path):
                parts += [f"--- {self.name} {label}: {path} (last {lines} lines) ---", tail_file(path, lines)]
        return "\n".join(parts)

    def __repr__(self):
        return f"<Proc {self.name} pid={self.pid} alive={self.alive()}>"


class Procs:
    """Owner of a test's temporary directory, processes and cleanups (an ExitStack underneath).

        with Procs() as procs:
            p = procs.start("dnsmasq", [...])
            procs.wait_port("127.0.0.2", 5222, proc=p)
            procs.callback(some_cleanup)
        # everything stopped in reverse order, temp dir removed

    The temp dir is world-traversable (0755) so servers running as their own users (prosody,
    ejabberd) can reach the subdirectories made for them. Set KIT_KEEP=1 to keep it for debugging.
    """

    def __init__(self, prefix="s2s-it-"):
        self._stack = contextlib.ExitStack()
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.tmp, 0o755)
        self.procs = []
        self.logs = {}   # label -> path of logs not owned by one process
        self._closed = False
        self._stack.callback(self._remove_tmp)
        _active.append(self)
        _watch("d+", self.tmp)

    # -- cleanup plumbing ---------------------------------------------------------------------
    def callback(self, fn, *args, **kwargs):
        return self._stack.callback(fn, *args, **kwargs)

    def enter_context(self, cm):
        return self._stack.enter_context(cm)

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self._stack.close()
        finally:
            if self in _active:
                _active.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None and not issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
                self.dump_logs()
        except Exception:
            pass          # e.g. stderr is a closed pipe: cleaning up matters more
        finally:
            self.close()
        return False

    def _remove_tmp(self):
        if os.environ.get("KIT_KEEP"):
            sys.stderr.write(f"kit: KIT_KEEP set, leaving {self.tmp}\n")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        _watch("d-", self.tmp)      # only now: if interrupted above, the watchdog still removes it

    # -- directories ----------------------------------------------------------------------------
    def mkdir(self, *parts, owner=None, mode=0o755):
        """A directory under the temp dir, owned by user `owner` (a name) if given and we are root."""
        path = os.path.join(self.tmp, *parts)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, mode)
        if owner and is_root():
            pw = pwd.getpwnam(owner)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        return path

    # -- processes ------------------------------------------------------------------------------
    def start(self, name, argv, *, env=None, cwd=None, log_path=None, user=None,
              stop_timeout=DEFAULT_STOP_TIMEOUT, extra_logs=None):
        """Start `argv` with stdout+stderr to its own log file, in a new session. `user`: run as that
        system user (only when we are root; set by Popen itself, so the PID is the program's own).
        The process is stopped when this Procs closes (or earlier with proc.stop())."""
        if self._closed:
            raise KitError("Procs already closed")
        if log_path is None:
            log_path = os.path.join(self.mkdir("logs"), f"{name}.log")
        full_env = dict(os.environ)
        full_env.pop("PYTHONPATH", None)
        if env:
            full_env.update(env)
        kwargs = {}
        if user and is_root():
            pw = pwd.getpwnam(user)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            full_env.update(USER=user, LOGNAME=user)
            if not (env and "HOME" in env):
                full_env["HOME"] = pw.pw_dir
        with _lock:
            log = open(log_path, "ab")
            try:
                popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=cwd, env=full_env, start_new_session=True, close_fds=True, **kwargs)
            finally:
                log.close()
            _watch("+", popen.pid)
            proc = Proc(name, list(argv), log_path, popen, stop_timeout, extra_logs)
            _unstopped.append(proc)
            self.procs.append(proc)
            self._stack.callback(proc.stop)
        return proc

    def wait_port(self, host, port, timeout=15.0, proc=None):
        return wait_port(host, port, timeout, proc)

    def add_log(self, label, path):
        self.logs[label] = path

    def stop_all(self):
        """Stop every process now (reverse start order); the temp dir stays until close()."""
        for p in reversed(self.procs):
            p.stop()

    def dump_logs(self, lines=TAIL_LINES, file=None):
        file = file or sys.stderr
        for p in self.procs:
            file.write(p.tail(lines) + "\n")
        for label, path in self.logs.items():
            file.write(f"--- {label}: {path} (last {lines} lines) ---\n{tail_file(path, lines)}\n")
        file.flush()


def dump_active_logs(lines=TAIL_LINES, file=None):
    """Print the log tails of every Procs still open (used by the test runner on a failure)."""
    for procs in list(_active):
        procs.dump_logs(lines, file)


def run(argv, *, timeout, user=None, env=None, cwd=None, check=True, what=None):
    """Run a short command to completion with a deadline; returns CompletedProcess (text output).
    On overrun its whole process group is killed (SIGKILL) and Timeout raised; with `check`, a
    non-zero exit raises KitError with its output."""
    kwargs = {}
    full_env = dict(os.environ)
    full_env.pop("PYTHONPATH", None)
    if env:
        full_env.update(env)
    if user and is_root():
        pw = pwd.getpwnam(user)
        kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        full_env.update(USER=user, LOGNAME=user)
        if not (env and "HOME" in env):
            full_env["HOME"] = pw.pw_dir
    what = what or " ".join(argv)
    popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=full_env, cwd=cwd, start_new_session=True, **kwargs)
    try:
        out, err = popen.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = popen.communicate()
        raise Timeout(f"{what}: no result after {timeout}s\n{out}{err}") from None
    finally:
        # whatever it left behind in its group goes too
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    cp = subprocess.CompletedProcess(argv, popen.returncode, out, err)
    if check and cp.returncode != 0:
        raise KitError(f"{what}: exit status {cp.returncode}\n{out}{err}")
    return cp
