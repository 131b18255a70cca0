#!/usr/bin/python3
"""The slixmpp side of kit/clients.py, run as `/usr/bin/python3 _xmpp_worker.py` with one JSON job on
stdin; prints one line `KITRESULT {json}` on stdout. Self-contained (stdlib + python3-slixmpp).

Job: {"action": "login"|"message"|"ping"|"ping_user"|"send"|"receive"|"collect"|"subscribe",
      "timeout": seconds,
      "accounts": [{"jid", "password", "host", "port", "ca", "resource"}...], ...action args}
Every wait has a deadline; the parent also kills this process (group) if it overruns.

Clients connect to the given 127.0.0.x address only: get_dns_records() is overridden so slixmpp
never resolves the JID's domain through the system resolver (it otherwise calls getaddrinfo on
the domain even when an address is given).
"""
import asyncio
import json
import logging
import os
import ssl
import sys
import time
import uuid
import xml.etree.ElementTree as ET

logging.basicConfig(level=logging.DEBUG if os.environ.get("KIT_XMPP_DEBUG") else logging.ERROR,
                    stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")

import slixmpp  # noqa: E402  (after logging is set up: it warns at import time)
from slixmpp.exceptions import IqError, IqTimeout  # noqa: E402
from slixmpp.stanza.error import Error as StanzaError  # noqa: E402

# slixmpp 1.8 knows RFC 3920's stanza error conditions only: without this, RFC 6120's
# <policy-violation/> (section 8.3.3.12) reads as an empty condition
StanzaError.conditions = set(StanzaError.conditions) | {"policy-violation"}

START = time.monotonic()


def now():
    return round(time.monotonic() - START, 4)


class Client(slixmpp.ClientXMPP):
    def __init__(self, spec, events):
        jid = spec["jid"] + ("/" + spec["resource"] if spec.get("resource") else "")
        super().__init__(jid, spec["password"])
        self.spec = spec
        self.events = events
        self.addr = (spec["host"], int(spec["port"]))
        self.session = asyncio.get_event_loop().create_future()
        self.messages = []           # every message stanza received, as dicts
        self.errors = []
        if spec.get("answer_pings"):
            self.register_plugin("xep_0199")      # answers urn:xmpp:ping iq gets
        if spec.get("ca"):
            self.ca_certs = spec["ca"]
        else:
            self.ssl_context.check_hostname = False
            self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self._on_session)
        self.add_event_handler("failed_auth", lambda *_: self._fail("authentication failed"))
        self.add_event_handler("connection_failed", lambda e: self._fail(f"connection failed: {e}"))
        self.add_event_handler("ssl_invalid_chain", lambda e: self._fail(f"TLS certificate not trusted: {e}"))
        self.add_event_handler("stream_error", lambda e: self._fail(f"stream error: {e['condition']} {e['text']}"))
        self.add_event_handler("disconnected", self._on_disconnected)
        self.add_event_handler("message", self._on_message)
        # an error reply without <body/> (Prosody's and s2s-proxy's bounces carry none) only
        # fires "message_error"; one with a body fires both (recorded once, by _on_message)
        self.add_event_handler("message_error", self._on_message_error)

    async def get_dns_records(self, domain, port=None):     # never the system resolver
        return [(domain, self.addr[0], self.addr[1])]

    def _fail(self, why):
        self.errors.append(why)
        if not self.session.done():
            self.session.set_exception(RuntimeError(f"{self.spec['jid']}: {why}"))

    def _on_disconnected(self, *_):
        if not self.session.done():
            self._fail("disconnected before session start")

    async def _on_session(self, _):
        self.events.append((now(), self.spec["jid"], "session_start"))
        self.send_presence()
        try:
            await self.get_roster(timeout=5)
        except (IqError, IqTimeout):
            pass
        if not self.session.done():
            self.session.set_result(now())

    def _on_message_error(self, msg):
        if not msg["body"]:
            self._on_message(msg)

    def _on_message(self, msg):
        err = None
        if msg["type"] == "error":
            err = {"condition": msg["error"]["condition"], "type": msg["error"]["type"],
                   "text": msg["error"]["text"]}
        self.messages.append({"t": now(), "from": str(msg["from"]), "to": str(msg["to"]), "type": msg["type"],
                              "id": msg["id"], "body": msg["body"], "error": err})

    async def start(self, deadline):
        t0 = now()
        self.connect(address=self.addr, force_starttls=True)
        await asyncio.wait_for(asyncio.shield(self.session), max(0.1, deadline - time.monotonic()))
        return now() - t0

    async def close(self):
        try:
            fut = self.disconnect(wait=1.0)
            if fut is not None:
                await asyncio.wait_for(fut, 3)
        except Exception:
            pass


async def wait_for(pred, deadline, interval=0.02):
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(interval)


async def job_login(job, clients, deadline, out):
    out["login_s"] = [await c.start(deadline) for c in clients]
    out["bound"] = [str(c.boundjid) for c in clients]
    out["ok"] = True


async def job_message(job, clients, deadline, out):
    a, b = clients
    out["login_s"] = list(await asyncio.gather(a.start(deadline), b.start(deadline)))
    token = job.get("body") or f"kit-{uuid.uuid4().hex}"
    to = job.get("to") or b.boundjid.bare
    mid = f"kit-{uuid.uuid4().hex[:12]}"
    t_send = time.monotonic()
    msg = a.make_message(mto=to, mbody=token, mtype=job.get("type", "chat"))
    msg["id"] = mid
    msg.send()
    out["sent"] = {"to": to, "body": token, "id": mid}
    await wait_for(lambda: [m for m in b.messages if m["body"] == token and m["type"] != "error"] or
                         [m for m in a.messages if m["id"] == mid and m["type"] == "error"], deadline)
    out["received"] = [m for m in b.messages if m["body"] == token]
    out["bounced"] = [m for m in a.messages if m["id"] == mid and m["type"] == "error"]
    if out["received"]:
        out["ok"] = True
        out["latency_s"] = round(time.monotonic() - t_send, 4)
    elif out["bounced"]:
        e = out["bounced"][0]["error"] or {}
        out["error"] = f"message bounced: {e.get('condition')} ({e.get('type')}) {e.get('text') or ''}".strip()
        out["error_condition"] = e.get("condition")
    else:
        out["error"] = f"message to {to} not received by {b.boundjid} before the deadline"


async def job_ping(job, clients, deadline, out):
    (a,) = clients
    out["login_s"] = [await a.start(deadline)]
    iq = a.Iq()
    iq["type"] = "get"
    iq["to"] = job["target"]
    iq.append(ET.Element("{urn:xmpp:ping}ping"))
    t0 = time.monotonic()
    try:
        reply = await iq.send(timeout=max(0.1, deadline - time.monotonic()))
        out["ok"] = True
        out["rtt_s"] = round(time.monotonic() - t0, 4)
        out["reply_from"] = str(reply["from"])
    except IqError as e:
        err = e.iq["error"]
        out["error"] = f"ping {job['target']}: error {err['condition']} ({err['type']}) {err['text'] or ''}".strip()
        out["error_condition"] = err["condition"]
        out["rtt_s"] = round(time.monotonic() - t0, 4)
    except IqTimeout:
        out["error"] = f"ping {job['target']}: no reply before the deadline"


async def job_ping_user(job, clients, deadline, out):
    """a pings b's full JID (b answers through slixmpp's XEP-0199 plugin)."""
    a, b = clients
    out["login_s"] = list(await asyncio.gather(a.start(deadline), b.start(deadline)))
    target = str(b.boundjid)
    iq = a.Iq()
    iq["type"] = "get"
    iq["to"] = target
    iq.append(ET.Element("{urn:xmpp:ping}ping"))
    t0 = time.monotonic()
    out["target"] = target
    try:
        reply = await iq.send(timeout=max(0.1, deadline - time.monotonic()))
        out["ok"] = True
        out["rtt_s"] = round(time.monotonic() - t0, 4)
        out["reply_from"] = str(reply["from"])
    except IqError as e:
        err = e.iq["error"]
        out["error"] = f"ping {target}: error {err['condition']} ({err['type']}) {err['text'] or ''}".strip()
        out["error_condition"] = err["condition"]
    except IqTimeout:
        out["error"] = f"ping {target}: no reply before the deadline"


def write_progress(path, sent, client, done=False):
    """{"sent": [{id, body}], "bounced": [ids of the error replies so far], "done": all sent}, written
    whole to a temporary file and renamed, so a reader never sees half of it."""
    data = {"sent": sent, "bounced": [m["id"] for m in client.messages if m["type"] == "error"], "done": done}
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)


async def job_send(job, clients, deadline, out):
    """a sends job["bodies"] (one message each) to job["to"] and then waits job["linger"] seconds
    for error bounces (less if all came back); ok when none came back. data: sent [{id, body}],
    sent_t (worker clock), bounced (each with its arrival time t). Optional: job["interval"]
    seconds between two messages (a steady rate); job["progress"] a file rewritten with what was
    sent and which came back so far (see write_progress); job["stop_file"]: stay (up to the
    deadline) until this file exists instead of the linger."""
    (a,) = clients
    out["login_s"] = [await a.start(deadline)]
    sent = []
    interval = float(job.get("interval") or 0)
    progress = job.get("progress")
    start = time.monotonic()
    for i, body in enumerate(job["bodies"]):
        if interval:      # a steady rate: message i leaves at start + i * interval
            await asyncio.sleep(max(0.0, start + i * interval - time.monotonic()))
        mid = f"kit-{uuid.uuid4().hex[:12]}"
        msg = a.make_message(mto=job["to"], mbody=body, mtype=job.get("type", "chat"))
        msg["id"] = mid
        msg.send()
        sent.append({"id": mid, "body": body})
        if progress:
            write_progress(progress, sent, a)
    out["sent"] = sent
    out["sent_t"] = now()
    ids = {m["id"] for m in sent}
    stop_file = job.get("stop_file")
    linger_end = min(deadline, time.monotonic() + float(job.get("linger", 1.0)))

    def done():
        if progress:
            write_progress(progress, sent, a, done=True)
        if stop_file:
            return os.path.exists(stop_file)
        return ids <= {m["id"] for m in a.messages if m["type"] == "error"}
    # until the linger ends, or every message has come back (with stop_file: until it exists)
    await wait_for(done, deadline if stop_file else linger_end)
    out["bounced"] = [m for m in a.messages if m["id"] in ids and m["type"] == "error"]
    if out["bounced"]:
        e = out["bounced"][0]["error"] or {}
        out["error"] = f"message bounced: {e.get('condition')} ({e.get('type')}) {e.get('text') or ''}".strip()
        out["error_condition"] = e.get("condition")
    else:
        out["ok"] = True


async def job_receive(job, clients, deadline, out):
    """a logs in (offline messages come with the initial presence) and waits until it has a
    message with each of job["bodies"]; ok when all arrived. data: received, missing."""
    (a,) = clients
    out["login_s"] = [await a.start(deadline)]
    want = set(job["bodies"])
    await wait_for(lambda: want <= {m["body"] for m in a.messages}, deadline)
    got = {m["body"] for m in a.messages}
    out["received"] = [m for m in a.messages if m["body"] in want]
    out["missing"] = sorted(want - got)
    if out["missing"]:
        out["error"] = f"{len(out['missing'])} of {len(want)} messages not received before the deadline"
    else:
        out["ok"] = True


async def job_collect(job, clients, deadline, out):
    """a logs in (offline messages are delivered) and records every message until it has one
    with each of job["bodies"], then stays job["linger"] seconds more, so that a duplicate
    arriving later is seen too; ok when all arrived. data: received (every message with a wanted
    body, duplicates included), counts {body: n}, missing, other_bodies (of any other message)."""
    (a,) = clients
    out["login_s"] = [await a.start(deadline)]
    want = set(job["bodies"])
    await wait_for(lambda: want <= {m["body"] for m in a.messages}, deadline)
    await asyncio.sleep(max(0.0, min(float(job.get("linger", 1.0)), deadline - time.monotonic())))
    out["received"] = [m for m in a.messages if m["body"] in want]
    out["counts"] = {b: sum(1 for m in out["received"] if m["body"] == b) for b in sorted(want)}
    out["missing"] = sorted(b for b, n in out["counts"].items() if n == 0)
    out["other_bodies"] = [m["body"] for m in a.messages if m["body"] and m["body"] not in want]
    if out["missing"]:
        out["error"] = f"{len(out['missing'])} of {len(want)} messages not received before the deadline"
    else:
        out["ok"] = True


async def job_subscribe(job, clients, deadline, out):
    a, b = clients
    for c in clients:
        c.auto_authorize = True
        c.auto_subscribe = True
    out["login_s"] = list(await asyncio.gather(a.start(deadline), b.start(deadline)))
    a.send_presence_subscription(pto=b.boundjid.bare)

    def sub(c, other):
        return c.client_roster[other.boundjid.bare]["subscription"]

    done = await wait_for(lambda: sub(a, b) == "both" and sub(b, a) == "both", deadline, 0.05)
    out["subscription"] = {str(a.boundjid.bare): sub(a, b), str(b.boundjid.bare): sub(b, a)}
    if done:
        out["ok"] = True
    else:
        out["error"] = f"subscriptions not 'both' before the deadline: {out['subscription']}"


async def job_presences(job, clients, deadline, out):
    """One client logs in and sends a presence of type job["type"] to each of job["to"] (JID
    strings), job["interval"] seconds apart, then stays job["linger"] seconds. data: sent_t."""
    a, = clients
    out["login_s"] = [await a.start(deadline)]
    out["sent_t"] = []
    for to in job["to"]:
        a.send_presence(pto=to, ptype=job["type"])
        out["sent_t"].append(now())
        if job.get("interval"):
            await asyncio.sleep(float(job["interval"]))
    await asyncio.sleep(float(job.get("linger", 0.5)))
    out["ok"] = True


JOBS = {"presences": job_presences, "login": job_login, "message": job_message, "ping": job_ping, "ping_user": job_ping_user,
        "send": job_send, "receive": job_receive, "subscribe": job_subscribe,
        "collect": job_collect}


async def main(job):
    out = {"ok": False, "action": job["action"]}
    events = []
    deadline = time.monotonic() + float(job["timeout"])
    clients = [Client(spec, events) for spec in job["accounts"]]
    try:
        await JOBS[job["action"]](job, clients, deadline, out)
    except asyncio.TimeoutError:
        out["error"] = f"{job['action']}: session not started before the deadline " \
                       f"({'; '.join(e for c in clients for e in c.errors) or 'no error reported'})"
    except Exception as e:       # report, don't crash: the parent wants a result
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    out["client_errors"] = {c.spec["jid"]: c.errors for c in clients if c.errors}
    out["events"] = events
    out["elapsed_s"] = now()
    return out


if __name__ == "__main__":
    job = json.load(sys.stdin)
    result = asyncio.run(main(job))
    sys.stdout.write("KITRESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)
