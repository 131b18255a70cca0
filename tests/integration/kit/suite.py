"""What the end-to-end test files share: the module fixture (one Procs, a throwaway CA and a
certificate per domain for every class of a file), starting servers in parallel, unique message
bodies, and client jobs run in the background.

    MODULE = {}
    def setUpModule(): kit.suite.module_setup(MODULE, ("a.test", "b.test"))
    def tearDownModule(): kit.suite.module_teardown(MODULE)
    start_all(prosody_a, prosody_b, proxy_a, proxy_b)     # each start() waits for its readiness
    job = Background(clients.send, alice, "bob@b.test", [token("m")]); ...; job.join_result(30)
"""
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from . import proxy
from .ca import CA
from .procs import Procs


def module_setup(store, domains, *, check=None):
    """Fill `store` with procs, ca and certs ({domain: Issued}); `check()` runs first (it may raise
    unittest.SkipTest). Fails early and clearly without an s2s-proxy binary."""
    procs = Procs()
    try:
        proxy.find_binary()
        if check:
            check()
        ca = CA(procs.mkdir("ca"))
        store.update(procs=procs, ca=ca, certs={d: ca.issue(d) for d in domains})
    except BaseException:
        procs.close()
        raise


def module_teardown(store):
    if "procs" in store:
        store["procs"].close()


def start_all(*servers):
    """Start independent servers in parallel (each start() waits for its own readiness)."""
    with ThreadPoolExecutor(len(servers)) as ex:
        for f in [ex.submit(s.start) for s in servers]:
            f.result()


def token(tag):
    """A message body no other test sends."""
    return f"{tag}-{uuid.uuid4().hex[:10]}"


class Background(threading.Thread):
    """A client job (a function returning a kit Result) run while the test does something else."""

    def __init__(self, fn, *args, **kwargs):
        super().__init__(daemon=True)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.result = None
        self.exc = None
        self.start()

    def run(self):
        try:
            self.result = self.fn(*self.args, **self.kwargs)
        except BaseException as e:      # handed to the test by join_result()
            self.exc = e

    def join_result(self, timeout):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"client job still running after {timeout}s")
        if self.exc:
            raise self.exc
        return self.result
