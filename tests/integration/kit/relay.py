"""A TCP relay on loopback that the test controls, to cut a connection without FIN or RST.

    r = Relay("127.0.0.31", ("127.0.0.13", 5269)).start()   # listens on r.addr, connects on to target
    px.route("b.test", *r.addr)
    r.pause()      # stop forwarding both ways; the sockets stay open, nothing is sent (no FIN, no RST)
    r.resume()     # forward again, starting with the bytes held meanwhile
    r.cut()        # forget every connection silently (the peers see nothing); new ones are relayed
    r.close()

While paused the relay neither reads nor writes: what the peers write stays in the kernel's
buffers (their writes succeed until those are full, as toward a host whose packets are dropped),
nothing reaches the other side, and a peer's close is not passed on either until resume(). cut()
forgets the connections without closing them (they are closed at close()).
One thread with select(); stats() says how many connections and bytes went through.
"""
import select
import socket
import threading

from .procs import check_loopback, free_port


class Relay:
    def __init__(self, host, target, port=None):
        self.host = check_loopback(host)
        self.target = (check_loopback(target[0]), int(target[1]))
        self.port = int(port) if port else free_port(host)
        self._lock = threading.Lock()
        self._pairs = []             # [client, upstream, {sock: held bytes for the other side}]
        self._dead = []              # cut connections: kept open, never read or written
        self._paused = False
        self._stop = False
        self._listener = None
        self._thread = None
        self.accepted = 0
        self.bytes = 0

    @property
    def addr(self):
        return (self.host, self.port)

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(self.addr)
        s.listen(16)
        s.setblocking(False)
        self._listener = s
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"relay-{self.port}")
        self._thread.start()
        return self

    def pause(self):
        with self._lock:
            self._paused = True

    def resume(self):
        with self._lock:
            self._paused = False

    def cut(self):
        with self._lock:
            for c, u, _ in self._pairs:
                self._dead += [c, u]
            self._pairs = []

    def stats(self):
        with self._lock:
            return {"connections": len(self._pairs), "accepted": self.accepted, "bytes": self.bytes,
                    "paused": self._paused}

    def close(self):
        self._stop = True
        if self._thread:
            self._thread.join(5)
        with self._lock:
            socks = [x for c, u, _ in self._pairs for x in (c, u)] + self._dead
            self._pairs, self._dead = [], []
        for x in socks:
            x.close()
        if self._listener:
            self._listener.close()
            self._listener = None

    def _accept(self):
        try:
            c, _ = self._listener.accept()
        except OSError:
            return
        family = socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET
        u = socket.socket(family, socket.SOCK_STREAM)
        u.settimeout(5)
        try:
            u.connect(self.target)
        except OSError:
            c.close()
            u.close()
            return
        c.setblocking(False)
        u.setblocking(False)
        with self._lock:
            self._pairs.append([c, u, {c: b"", u: b""}])
            self.accepted += 1

    def _run(self):
        while not self._stop:
            with self._lock:
                pairs = list(self._pairs)
                paused = self._paused
            rlist = [self._listener] + ([] if paused else [x for c, u, _ in pairs for x in (c, u)])
            wlist = [] if paused else [x for c, u, held in pairs for x in (c, u) if held[x]]
            try:
                r, w, _ = select.select(rlist, wlist, [], 0.05)
            except (OSError, ValueError):
                continue
            for x in r:
                if x is self._listener:
                    self._accept()
                    continue
                pair = next((p for p in pairs if x in p[:2]), None)
                if pair is None:
                    continue
                other = pair[1] if x is pair[0] else pair[0]
                try:
                    data = x.recv(65536)
                except OSError:
                    data = b""
                if not data:          # one side closed: close both (outside a pause or cut)
                    self._drop(pair)
                    continue
                with self._lock:
                    if pair in self._pairs:
                        pair[2][other] += data
                        self.bytes += len(data)
            for x in w:
                pair = next((p for p in pairs if x in p[:2]), None)
                if pair is None or pair not in self._pairs:
                    continue
                try:
                    n = x.send(pair[2][x])
                except OSError:
                    self._drop(pair)
                    continue
                with self._lock:
                    pair[2][x] = pair[2][x][n:]

    def _drop(self, pair):
        with self._lock:
            if pair in self._pairs:
                self._pairs.remove(pair)
            else:
                return
        pair[0].close()
        pair[1].close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
