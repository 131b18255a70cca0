"""Runs a module's unittest tests the way the project's suites report: the tail of every live log
when a test fails or errors, per-test timings, and a last line
`integration-summary: N passed, N failed` (", N skipped" appended when some were skipped) that
tests/run-all.sh can add to the total. Exit status 0 only if nothing failed.

    if __name__ == "__main__":
        sys.exit(kit.runner.main())

`main([module_a, module_b])` runs several test modules with one summary (see run_all.py).

SIGTERM, SIGHUP and SIGINT stop the run at once (unittest would otherwise record SystemExit as one
failed test and go on): every server still running is stopped, the summary counts the interrupted
run as one more failure, and the exit status is 128 + the signal number.
"""
import signal
import sys
import time
import unittest

from .procs import _close_all_at_exit, dump_active_logs


class _Interrupted(KeyboardInterrupt):
    """Raised by the signal handler; unittest lets KeyboardInterrupt through and stops."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class _Result(unittest.TextTestResult):
    current = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _Result.current = self

    running = False      # a test has started and not stopped (so an interrupt hit it)

    def startTest(self, test):
        self._t0 = time.monotonic()
        self.running = True
        super().startTest(test)

    def stopTest(self, test):
        self.running = False
        super().stopTest(test)

    def _write_status(self, test, status):
        # TextTestResult (3.11+) prints every verdict through here: add the test's duration
        t0 = getattr(self, "_t0", None)
        if t0 is not None:
            status = f"{status} ({time.monotonic() - t0:.2f}s)"
        super()._write_status(test, status)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        dump_active_logs(file=self.stream)

    def addError(self, test, err):
        super().addError(test, err)
        dump_active_logs(file=self.stream)


def _interrupt(signum, frame):
    raise _Interrupted(signum)


def _summary(result, t0, extra_failed=0):
    if result is None:
        passed = bad = skipped = 0
    else:
        bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        skipped = len(result.skipped)
        passed = result.testsRun - bad - skipped
        if extra_failed and result.running:
            passed -= 1          # the test that was running when the signal came did not pass
    bad += extra_failed
    print(f"integration run time: {time.monotonic() - t0:.1f}s")
    line = f"integration-summary: {passed} passed, {bad} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    sys.stdout.flush()
    return bad


def main(module="__main__", argv=None):
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _interrupt)
    argv = list(sys.argv if argv is None else argv)
    loader = unittest.TestLoader()
    names = [a for a in argv[1:] if not a.startswith("-")]
    if isinstance(module, (list, tuple)):
        # several test modules in one run and one summary (tests/integration/run_all.py); names
        # are then dotted from the module: test_federation.A_Plain[.test_1_message_a_to_b]
        mods = [sys.modules[m] if isinstance(m, str) else m for m in module]
        suite = loader.loadTestsFromNames(names) if names else \
            unittest.TestSuite(loader.loadTestsFromModule(m) for m in mods)
    else:
        mod = sys.modules[module] if isinstance(module, str) else module
        suite = loader.loadTestsFromNames(names, mod) if names else loader.loadTestsFromModule(mod)
    t0 = time.monotonic()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=_Result)
    try:
        result = runner.run(suite)
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)      # let the cleanup finish
        print(f"\ninterrupted by signal {signum}: stopping every server", flush=True)
        _close_all_at_exit()
        _summary(_Result.current, t0, extra_failed=1)
        return 128 + signum
    bad = _summary(result, t0)
    return 0 if bad == 0 else 1
