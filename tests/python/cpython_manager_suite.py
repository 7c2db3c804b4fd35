#!/usr/bin/env python3
"""Run CPython's own manager tests (test._test_multiprocessing) against a polyproc manager server.

usage: cpython_manager_suite.py <server-binary> [options] [-k PATTERN | PATTERN ...]

  <server-binary>        tests/sync_manager_server (usage: <host:port | unix-path> <authkey>)
  --list                 print the selected test ids (marking expected failures) and exit
  -k PATTERN / PATTERN   like unittest's -k: keep tests whose id matches (substring or fnmatch)
  --start-method M       multiprocessing start method for the tests' worker processes (default fork)
  --timeout S            per-test timeout in seconds (default 60)
  --total-timeout S      hard limit for the whole run (default 280); dumps tracebacks and exits 1
  --run-expected-failures  run the EXPECTED_TO_FAIL tests too instead of skipping them
  -v / -q                verbosity (default: one line per test)

What it does
  * Installs the manager flavour of the suite exactly as Lib/test/test_multiprocessing_*/test_manager.py
    does (install_tests_in_module_dict(..., only_type='manager') -> WithManagerTest* classes), plus the
    plain unittest.TestCase classes that create SyncManagers (TestSyncManagerTypes, TestInitializers,
    TestManagerExceptions on 3.12+).
  * Monkeypatches multiprocessing.managers.SyncManager.start (the only place where a SyncManager spawns
    its server: multiprocessing.Manager(), SyncManager().start() and `with SyncManager()` all go
    through it). Instead of forking a Python server process it starts one polyproc server process
    from <server-binary> (stdin=PIPE so it dies with this harness), records its address, and sets
    the manager up exactly as BaseManager.start would: state STARTED, _process = a Process-like
    wrapper around the Popen, shutdown = the usual util.Finalize(_finalize_manager, ...). So
    shutdown() sends the 'shutdown' request (and terminates/kills the server if it lingers), join()
    waits for it, and _number_of_objects()/_debug_info() talk to the polyproc server.
  * Tests that can only pass with Python code running inside the server are listed in
    EXPECTED_TO_FAIL below and reported as skipped.

Exit status 0 only if every selected (non-skipped) test passed.
"""
import argparse
import fnmatch
import faulthandler
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import multiprocessing
import multiprocessing.connection
import multiprocessing.managers
from multiprocessing import util
from multiprocessing.managers import BaseManager, State, SyncManager

import test._test_multiprocessing as _tm

# ---------------------------------------------------------------------------------------------
# Tests that need Python code inside the server. Keys are "Class" or "Class.test_method"
# (fnmatch patterns allowed); values are the one-line reason. They are reported as skipped.
# ---------------------------------------------------------------------------------------------
EXPECTED_TO_FAIL = {
    # BaseManager subclasses with their own registry of Python callables: the manager server must
    # call FooBar / baz / get_queue, i.e. run Python. They are not SyncManagers, so they would not
    # touch polyproc anyway (they would run against CPython's own server).
    "WithManagerTestMyManager":
        "MyManager registers Python classes/generators (FooBar, baz) that run inside the server",
    "WithManagerTestRemoteManager":
        "QueueManager registers a Python callable (get_queue) and uses the xmlrpclib serializer",
    "WithManagerTestManagerRestart":
        "QueueManager registers a Python callable (get_queue) that runs inside the server",

    # manager.Pool(): the pool lives in the server process and runs the Python functions the tests
    # submit (sqr, mul, time.sleep, ...). A polyproc server cannot unpickle or call them. The other
    # WithManagerTestPool tests (test_make_pool, test_context, test_map_unplicklable, ...) stay live.
    "WithManagerTestPool.test_apply": "pool.apply(sqr, ...) runs a Python function in the server",
    "WithManagerTestPool.test_async": "pool.apply_async(sqr, ...) runs a Python function in the server",
    "WithManagerTestPool.test_async_timeout":
        "pool.apply_async(sqr, ...) runs a Python function in the server",
    "WithManagerTestPool.test_empty_iterable": "pool.map(sqr, []) pickles a Python function",
    "WithManagerTestPool.test_imap": "pool.imap(sqr, ...) runs a Python function in the server",
    "WithManagerTestPool.test_imap_unordered":
        "pool.imap_unordered(sqr, ...) runs a Python function in the server",
    "WithManagerTestPool.test_map": "pool.map(sqr, ...) runs a Python function in the server",
    "WithManagerTestPool.test_map_async": "pool.map_async(sqr, ...) runs a Python function in the server",
    "WithManagerTestPool.test_map_async_callbacks":
        "pool.map_async(..., callback=list.append) pickles Python callables to the server",
    "WithManagerTestPool.test_map_chunksize": "pool.map_async(sqr, ...) pickles a Python function",
    "WithManagerTestPool.test_map_no_failfast":
        "pool.map_async(raise_large_valuerror, ...) runs a Python function in the server",
    "WithManagerTestPool.test_release_task_refs":
        "pool.map(identity, [CountedObject()]) pickles a Python function and class to the server",
    "WithManagerTestPool.test_starmap": "pool.starmap(mul, ...) runs a Python function in the server",
    "WithManagerTestPool.test_starmap_async":
        "pool.starmap_async(mul, ...) runs a Python function in the server",
    "WithManagerTestPool.test_terminate":
        "pool.map_async(time.sleep, ...) runs a Python function in the server",
    "WithManagerTestPool.test_wrapped_exception":
        "pool.apply(self._raise) pickles a Python test class/method to the server",

    # Barrier(action=...): the action callable is pickled to the server, which calls it.
    "WithManagerTestBarrier.test_action":
        "Barrier(action=AppendTrue(results)) pickles a Python callable to the server, which calls it",
}

# ---------------------------------------------------------------------------------------------
# The polyproc server process, wrapped to look like the multiprocessing.Process that
# BaseManager.start would have created (is_alive/join/terminate/kill/exitcode/pid/name).
# ---------------------------------------------------------------------------------------------
SERVER_BINARY = None
STARTUP_TIMEOUT = 15.0


class PolyprocServerProcess:
    def __init__(self, popen, name):
        self._popen = popen
        self.pid = popen.pid
        self.name = name
        self.daemon = True

    def is_alive(self):
        return self._popen.poll() is None

    def join(self, timeout=None):
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return
        self._close_pipes()

    def terminate(self):
        if self._popen.poll() is None:
            self._popen.terminate()

    def kill(self):
        if self._popen.poll() is None:
            self._popen.kill()

    def close(self):
        self._close_pipes()

    def _close_pipes(self):
        if self._popen.stdin is not None and not self._popen.stdin.closed:
            try:
                self._popen.stdin.close()
            except OSError:
                pass

    @property
    def exitcode(self):
        return self._popen.poll()

    @property
    def sentinel(self):
        return None

    def __repr__(self):
        return "<PolyprocServerProcess pid=%d name=%s exitcode=%r>" % (
            self.pid, self.name, self.exitcode)


_live_servers = []


def _address_to_arg(address):
    if address is None:
        # What a CPython manager does with address=None: Listener(None) -> default family,
        # AF_UNIX on Linux, at an arbitrary path in multiprocessing's temp dir.
        address = multiprocessing.connection.arbitrary_address(
            multiprocessing.connection.default_family)
    if isinstance(address, tuple):
        host, port = address
        return "%s:%d" % (host, port), "inet"
    if isinstance(address, str):
        return address, "unix"
    raise ValueError("polyproc harness: unsupported manager address %r" % (address,))


def start_polyproc_server(address, authkey, name):
    arg, kind = _address_to_arg(address)
    authkey = bytes(authkey)
    if b"\0" in authkey:
        raise ValueError("polyproc harness: authkey contains a NUL byte; cannot pass it on argv")
    out = tempfile.TemporaryFile()
    popen = subprocess.Popen([SERVER_BINARY, arg, authkey], stdin=subprocess.PIPE,
                             stdout=out, close_fds=True)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    line = b""
    while True:
        out.seek(0)
        data = out.read()
        if b"\n" in data:
            line = data.split(b"\n", 1)[0].strip()
            break
        if popen.poll() is not None:
            raise RuntimeError("polyproc server %s exited with %s before printing its address"
                               % (SERVER_BINARY, popen.returncode))
        if time.monotonic() > deadline:
            popen.kill()
            popen.wait()
            raise RuntimeError("polyproc server did not print its address within %ss"
                               % STARTUP_TIMEOUT)
        time.sleep(0.005)
    out.close()
    text = line.decode()
    if kind == "inet":
        host, port = text.rsplit(":", 1)
        real_address = (host, int(port))
    else:
        real_address = text
    proc = PolyprocServerProcess(popen, name)
    _live_servers.append(proc)
    return proc, real_address


_original_start = BaseManager.start


def _uses_only_sync_manager_registry(manager):
    reg = type(manager)._registry
    base = SyncManager._registry
    return all(k in base and base[k] == v for k, v in reg.items())


def polyproc_start(self, initializer=None, initargs=()):
    """Replacement for BaseManager.start on SyncManager: start a polyproc server instead."""
    if not _uses_only_sync_manager_registry(self):
        # A SyncManager subclass with extra Python typeids: those need a Python server.
        print("\n[polyproc harness] %s has a non-SyncManager registry; using CPython's server"
              % type(self).__name__, file=sys.stderr)
        return _original_start(self, initializer, initargs)

    # Same argument/state checks as BaseManager.start.
    if self._state.value != State.INITIAL:
        if self._state.value == State.STARTED:
            raise multiprocessing.ProcessError("Already started server")
        elif self._state.value == State.SHUTDOWN:
            raise multiprocessing.ProcessError("Manager has shut down")
        else:
            raise multiprocessing.ProcessError(
                "Unknown state {!r}".format(self._state.value))
    if initializer is not None and not callable(initializer):
        raise TypeError('initializer must be a callable')

    if initializer is not None:
        # CPython runs the initializer in the (new) manager process before it starts serving.
        # The polyproc server cannot run Python, so run it in a child process of the same kind
        # first: the observable effect (side effects on other managed objects, done in another
        # process, before start() returns) is the same.
        p = self._ctx.Process(target=initializer, args=tuple(initargs))
        p.start()
        p.join()

    name = type(self).__name__ + "-polyproc"
    self._process, self._address = start_polyproc_server(self._address, self._authkey, name)
    self._state.value = State.STARTED
    self.shutdown = util.Finalize(
        self, type(self)._finalize_manager,
        args=(self._process, self._address, self._authkey, self._state,
              self._Client, getattr(self, "_shutdown_timeout", 1.0)),
        exitpriority=0)


# ---------------------------------------------------------------------------------------------
# Install the tests into this module's globals (as test_multiprocessing_*/test_manager.py does),
# at import time so that spawn/forkserver children can find the classes by name too.
# ---------------------------------------------------------------------------------------------
START_METHOD = os.environ.get("POLYPROC_SUITE_START_METHOD", "fork")

# Plain unittest.TestCase classes (not BaseTestCase) that create SyncManagers.
EXTRA_MANAGER_TESTCASES = ("TestSyncManagerTypes", "TestInitializers", "TestManagerExceptions")

_manager_globs = {"__name__": __name__}
_tm.install_tests_in_module_dict(_manager_globs, START_METHOD, only_type="manager")
_misc_globs = {"__name__": __name__}
_tm.install_tests_in_module_dict(_misc_globs, START_METHOD, exclude_types=True)

TEST_CLASSES = sorted(n for n, v in _manager_globs.items()
                      if isinstance(v, type) and issubclass(v, unittest.TestCase))
for _n in EXTRA_MANAGER_TESTCASES:
    if _n in _misc_globs:
        _manager_globs[_n] = _misc_globs[_n]
        TEST_CLASSES.append(_n)
globals().update(_manager_globs)  # includes setUpModule / tearDownModule
del _n


def _expected_failure_reason(cls_name, method_name):
    for key, reason in EXPECTED_TO_FAIL.items():
        if "." in key:
            c, m = key.split(".", 1)
            if fnmatch.fnmatchcase(cls_name, c) and fnmatch.fnmatchcase(method_name, m):
                return reason
        elif fnmatch.fnmatchcase(cls_name, key):
            return reason
    return None


def _iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _iter_tests(t)
        else:
            yield t


def _short_id(test):
    return "%s.%s" % (type(test).__name__, test._testMethodName)


class TimedResult(unittest.TextTestResult):
    """Arms a per-test SIGALRM timeout around each test."""
    per_test_timeout = 60

    def startTest(self, test):
        super().startTest(test)
        self._t0 = time.monotonic()
        signal.alarm(self.per_test_timeout)

    def stopTest(self, test):
        signal.alarm(0)
        super().stopTest(test)


class TestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise TestTimeout("test exceeded the per-test timeout of %ss" % TimedResult.per_test_timeout)


def main(argv):
    global SERVER_BINARY
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("server_binary")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("-k", dest="k", action="append", default=[])
    ap.add_argument("patterns", nargs="*")
    ap.add_argument("--start-method", default=None)
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--total-timeout", type=int, default=280)
    ap.add_argument("--run-expected-failures", action="store_true")
    ap.add_argument("-v", dest="verbosity", action="store_const", const=2, default=2)
    ap.add_argument("-q", dest="verbosity", action="store_const", const=1)
    args = ap.parse_args(argv)

    if args.start_method and args.start_method != START_METHOD:
        # The classes are installed at import time (so spawned children see them): re-exec.
        env = dict(os.environ, POLYPROC_SUITE_START_METHOD=args.start_method)
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + argv, env)

    SERVER_BINARY = os.path.abspath(args.server_binary)
    if not (args.list or os.access(SERVER_BINARY, os.X_OK)):
        ap.error("%s is not an executable" % SERVER_BINARY)

    # Child processes (fork) inherit this authkey; the polyproc server gets it on argv, so it must
    # not contain NUL bytes (the default os.urandom(32) key may).
    multiprocessing.current_process().authkey = ("polyproc-suite-%s" % os.urandom(12).hex()).encode()
    SyncManager.start = polyproc_start

    loader = unittest.TestLoader()
    patterns = args.k + args.patterns
    if patterns:
        loader.testNamePatterns = [p if "*" in p else "*%s*" % p for p in patterns]
    module = sys.modules[__name__]
    suite = unittest.TestSuite()
    for name in TEST_CLASSES:
        suite.addTests(loader.loadTestsFromTestCase(getattr(module, name)))

    # Mark expected failures as skipped (whole class when the key names a class, so that its
    # setUpClass does not even start a server).
    skipped = []
    if not args.run_expected_failures:
        for name in TEST_CLASSES:
            class_keys = [k for k in EXPECTED_TO_FAIL if "." not in k and fnmatch.fnmatchcase(name, k)]
            if class_keys:
                unittest.skip("EXPECTED_TO_FAIL: " + EXPECTED_TO_FAIL[class_keys[0]])(getattr(module, name))
        for t in _iter_tests(suite):
            reason = _expected_failure_reason(type(t).__name__, t._testMethodName)
            if reason:
                cls = type(t)
                meth = getattr(cls, t._testMethodName)
                if not getattr(meth, "__unittest_skip__", False):
                    setattr(cls, t._testMethodName,
                            unittest.skip("EXPECTED_TO_FAIL: " + reason)(meth))
                skipped.append(_short_id(t))

    if args.list:
        for t in _iter_tests(suite):
            sid = _short_id(t)
            reason = _expected_failure_reason(type(t).__name__, t._testMethodName)
            print(sid + ("    [EXPECTED_TO_FAIL: %s]" % reason if reason else ""))
        return 0

    print("polyproc CPython manager suite: python %s, start method %s, server %s, %d tests "
          "(%d expected-to-fail skipped)" % (sys.version.split()[0], START_METHOD, SERVER_BINARY,
                                             suite.countTestCases(), len(skipped)),
          file=sys.stderr, flush=True)

    TimedResult.per_test_timeout = args.timeout
    signal.signal(signal.SIGALRM, _on_alarm)
    faulthandler.dump_traceback_later(args.total_timeout, exit=True)

    runner = unittest.TextTestRunner(verbosity=args.verbosity, resultclass=TimedResult,
                                     stream=sys.stdout)
    t0 = time.monotonic()
    try:
        result = runner.run(suite)
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.alarm(0)
        for proc in _live_servers:
            proc.terminate()
            proc.join(2)
            proc.kill()
            proc.join(2)

    n_fail = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print("\nSUMMARY: python %s start=%s run=%d passed=%d failed=%d (failures=%d errors=%d) "
          "skipped=%d expected_to_fail_skipped=%d time=%.1fs"
          % (sys.version.split()[0], START_METHOD, result.testsRun,
             result.testsRun - n_fail - len(result.skipped), n_fail, len(result.failures),
             len(result.errors), len(result.skipped), len(skipped), time.monotonic() - t0))
    return 0 if result.wasSuccessful() and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
