"""Real XMPP clients (python3-slixmpp, run by /usr/bin/python3 in a subprocess) for the tests.

    alice = Account("alice@a.test", "pw-a", host="127.0.0.2", port=a.c2s_port, ca=ca.cert)
    bob = Account.on(prosody_b, "bob", "b.test")              # host/port/password/CA from the server
    r = send_message(alice, bob, timeout=20)                  # -> Result
    r.ok, r.error, r.error_condition, r.elapsed, r.data["latency_s"], r.data["received"]
    ping(alice, "b.test"); login(alice); subscribe_both(alice, bob)
    ping_user(alice, bob)                                     # iq ping to bob's full JID, bob answers
    send(bob, "alice@a.test", ["m1", "m2"], linger=2)         # fire and forget, report bounces
    receive(alice, ["m1", "m2"], timeout=20)                  # log in (offline messages), wait for them
    collect(alice, ["m1", "m2"], linger=1)                    # the same, and every copy counted (duplicates)

Each call runs one job in a fresh `/usr/bin/python3 kit/_xmpp_worker.py` (the Debian python that has
slixmpp, not whatever python3 is first on PATH) with a deadline inside the worker and a harder one
outside (the worker's process group is killed). A Result is returned in every case: `ok` False with
`error` saying what went wrong (auth, TLS, bounce with its condition, no delivery by the deadline).
c2s is not what the project tests: the clients trust the test CA (`ca`) or, with ca=None, skip
verification.
"""
import json
import os
import signal
import subprocess

from .procs import KitError, check_loopback

PYTHON = "/usr/bin/python3"
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_xmpp_worker.py")


class Account:
    def __init__(self, jid, password, *, host, port, ca=None, resource=None):
        self.jid = jid
        self.password = password
        self.host = check_loopback(host)
        self.port = int(port)
        self.ca = ca
        self.resource = resource

    @property
    def domain(self):
        return self.jid.split("@", 1)[-1].split("/", 1)[0]

    @classmethod
    def on(cls, server, user, domain, *, password=None, resource=None, verify=True):
        """The account `user@domain` on a kit Prosody/Ejabberd (password from its add_host users)."""
        if password is None:
            for h in server.hosts:
                d, users = (h.domain, h.users) if hasattr(h, "domain") else (h[0], h[1])
                if d == domain and user in users:
                    password = users[user]
        if password is None:
            raise KitError(f"no password known for {user}@{domain}")
        ca = server.ca.cert if (verify and server.ca is not None) else None
        return cls(f"{user}@{domain}", password, host=server.ip, port=server.c2s_port, ca=ca, resource=resource)

    def spec(self):
        return {"jid": self.jid, "password": self.password, "host": self.host, "port": self.port,
                "ca": self.ca, "resource": self.resource}

    def __repr__(self):
        return f"<Account {self.jid} via {self.host}:{self.port}>"


class Result:
    def __init__(self, data, stderr=""):
        self.data = data
        self.ok = bool(data.get("ok"))
        self.error = data.get("error")
        self.error_condition = data.get("error_condition")
        self.elapsed = data.get("elapsed_s")
        self.stderr = stderr

    def __bool__(self):
        return self.ok

    def describe(self):
        """One paragraph for an assertion message."""
        keep = {k: v for k, v in self.data.items() if k != "events"}
        s = json.dumps(keep, indent=None, default=str)
        if self.stderr.strip():
            s += "\nworker stderr (tail):\n" + "\n".join(self.stderr.strip().splitlines()[-15:])
        return s

    def __repr__(self):
        return f"<Result ok={self.ok} error={self.error!r} elapsed={self.elapsed}>"


def _job(action, accounts, timeout, specs=None, **args):
    job = {"action": action, "timeout": timeout, "accounts": specs or [a.spec() for a in accounts], **args}
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    popen = subprocess.Popen([PYTHON, WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = popen.communicate(json.dumps(job), timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        os.killpg(popen.pid, signal.SIGKILL)
        out, err = popen.communicate()
        return Result({"ok": False, "action": action,
                       "error": f"{action}: worker did not finish within {timeout + 10}s"}, err)
    for line in out.splitlines():
        if line.startswith("KITRESULT "):
            return Result(json.loads(line[len("KITRESULT "):]), err)
    return Result({"ok": False, "action": action,
                   "error": f"{action}: worker exited {popen.returncode} without a result"}, (out or "") + (err or ""))


def login(account, timeout=15):
    """Log in (STARTTLS, SASL, bind, presence, roster) and out again."""
    return _job("login", [account], timeout)


def send_message(sender, receiver, *, body=None, to=None, mtype="chat", timeout=20):
    """Both log in; sender sends a message (default: a unique body) to receiver's bare JID (or
    `to`); ok when receiver gets it. A bounce (type=error back to sender) ends the wait early with
    error_condition set. data: latency_s, received, bounced, sent."""
    args = {"type": mtype}
    if body is not None:
        args["body"] = body
    if to is not None:
        args["to"] = to
    return _job("message", [sender, receiver], timeout, **args)


def ping(account, target, timeout=15):
    """XEP-0199 ping from `account` to `target` (a domain, e.g. a remote server, or a full JID).
    data: rtt_s, reply_from; error_condition on an error reply."""
    return _job("ping", [account], timeout, target=target)


def subscribe_both(a, b, timeout=25):
    """a subscribes to b; both auto-accept and subscribe back; ok when both rosters say 'both'."""
    return _job("subscribe", [a, b], timeout)


def presences(account, to, ptype, *, interval=0, linger=0.5, timeout=15):
    """`account` sends a presence of type `ptype` ("subscribe", "subscribed"...) to each JID in
    `to`, `interval` seconds apart, and stays `linger` seconds. data: sent_t (worker clock)."""
    return _job("presences", [account], timeout, to=list(to), type=ptype, interval=interval, linger=linger)


def ping_user(account, target, timeout=15):
    """XEP-0199 ping from `account` to the full JID of `target` (an Account, logged in for the
    job and answering pings). data: target, rtt_s, reply_from; error_condition on an error reply."""
    specs = [account.spec(), dict(target.spec(), answer_pings=True)]
    return _job("ping_user", [account, target], timeout, specs=specs)


def send(sender, to, bodies, *, linger=1.0, mtype="chat", timeout=15, interval=0, progress=None, stop_file=None):
    """`sender` sends one message per body to `to` (a JID string) and stays `linger` seconds for
    bounces (less if all came back); ok when none came. data: sent, sent_t, bounced (with t).
    `interval`: seconds between two messages (a steady rate). `progress`: a file path the worker
    keeps rewriting with JSON {"sent": [{id, body}], "bounced": [ids], "done": bool} (see
    read_progress). `stop_file`: instead of the linger, stay until this file exists (or the
    timeout) and collect every bounce meanwhile."""
    return _job("send", [sender], timeout, to=to, bodies=list(bodies), linger=linger, type=mtype,
                interval=interval, progress=progress, stop_file=stop_file)


def read_progress(path):
    """What a send() job with `progress=path` has written so far ({} before its first message)."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def receive(account, bodies, timeout=20):
    """`account` logs in (so offline messages are delivered) and waits for one message with each
    body. data: received, missing."""
    return _job("receive", [account], timeout, bodies=list(bodies))


def collect(account, bodies, *, linger=1.0, timeout=20):
    """Like receive(), but stays `linger` seconds after the last wanted body arrived and reports
    every copy: data["counts"] {body: times received} (a duplicate shows as 2), received, missing,
    other_bodies (the bodies of every other message it got, e.g. offline ones not asked for)."""
    return _job("collect", [account], timeout, bodies=list(bodies), linger=linger)
