#!/usr/bin/env python3
"""CPython multiprocessing doing the work of bench/bench_*.cpp, for tools/bench-table.

Measures, with the fork start method unless the name says otherwise:
  process_start_join/<method>     get_context(method).Process(target=f).start(); join(), f empty,
                                  for method fork, spawn and forkserver; steady state (one process
                                  started before timing, which starts the forkserver's server)
                                                                           seconds per process
  pipe_roundtrip_8b/<placement>   Pipe(): send_bytes(8 bytes), the child echoes with
                                  recv_bytes/send_bytes, recv_bytes        seconds per round trip
  pipe_throughput_1mib/cross_cpu  Pipe(): send_bytes(1 MiB) x 64 to a child doing recv_bytes, one
                                  acknowledgement per batch (as the C++ benchmark)   bytes per second
  lock_uncontended                Lock(): acquire(); release() in one process      seconds per pair
  event_pingpong/cross_cpu        two Events: the parent does ping.set(); pong.wait(); pong.clear(),
                                  the child ping.wait(); ping.clear(); pong.set()   seconds per round trip
  condition_pingpong/cross_cpu    Condition() (its default RLock) and a RawValue('i') turn: the parent
                                  sets turn = 1, notify(), wait_for(turn == 0); the child waits for
                                  turn != 0, sets 0, notify()                       seconds per round trip
  value_increment/cross_cpu       Value('i'): parent and child both loop on
                                  `with v.get_lock(): v.value += 1`; the increments of both
                                  processes during the parent's timed loop          increments per second
  queue_64b/cross_cpu             Queue(4096): the child puts 64-byte bytes objects, the parent
                                  get()s them                                        items per second
  queue_roundtrip/cross_cpu       two Queues: the parent puts an int into one and gets the child's
                                  reply (the int + 1) from the other                 seconds per round trip
  queue_64b_4x4                   Queue(4096), 4 producer and 4 consumer processes, 40 000 64-byte
                                  items; timed from the go signal until all consumers finish
                                                                                     items per second
  queue_1mib/cross_cpu            Queue(4): the child puts 1 MiB bytes objects, the parent get()s
                                  them                                               bytes per second
  pool_map_trivial_chunksize1     Pool(2).map(increment, range(20000), chunksize=1)  tasks per second
  pool_map_trivial_default        Pool(2).map(increment, range(1000000)) (default chunksize)
                                                                                     tasks per second
  ppe_map_trivial_chunksize1      ProcessPoolExecutor(2).map(increment, range(20000)) (its default
                                  chunksize, 1)                                      tasks per second
  ppe_map_trivial_poolchunks      ProcessPoolExecutor(2).map(increment, range(1000000),
                                  chunksize = Pool's default rule, 125000)          tasks per second
  pool_apply_async_roundtrip      Pool(2).apply_async(increment, (i,)).get()        seconds per round trip
  pool_cpu_bound_2 / _1           Pool(2) / Pool(1).map(cpu_work, range(16), chunksize=1), cpu_work
                                  a fixed loop of integer arithmetic                 tasks per second
  pool_start_2                    Pool(2); map(increment, range(2), chunksize=1); close(); join()
                                                                                     seconds per pool
  manager_dict_set                Manager().dict(): d[i % 100] = i from the main process
                                                                                     seconds per set
  manager_dict_set_pinned/<placement>  the same, the client and every server thread pinned
                                                                                     seconds per set
  manager_dict_get                the same dict: d[i % 100]                          seconds per get
  manager_list_append             Manager().list(): l.append(i), cleared every 10 000 untimed
                                                                                     seconds per append
  manager_queue_put_get           Manager().Queue(): q.put(i); q.get()              seconds per pair
  manager_lock_acquire_release    Manager().Lock(): acquire(); release()             seconds per pair
  manager_two_writers             two children each set 2 000 keys of one Manager().dict(), timed
                                  from a go signal until both are done              sets per second
  manager_start_shutdown          Manager(); shutdown()                              seconds per manager
  remote_queue_put_get            a BaseManager on 127.0.0.1 gives a queue.Queue (register with a
                                  callable, as the distributed-processes tutorial); a connected
                                  client: q.put(i); q.get()                         seconds per pair
  remote_task_master_two_workers  that master, 2 000 tasks to two worker processes that put back
                                  n * n                                              tasks per second
  python_client_queue_put_get/cpython_server, .../polyproc_server
                                  a SyncManager client over TCP loopback: m.Queue(); q.put(i);
                                  q.get(), against CPython's server or polyproc's
                                  (POLYPROC_SYNC_MANAGER_SERVER)                    seconds per pair
Placements, as in bench_common.hpp: cross_cpu pins the parent and the child to two different CPUs,
same_cpu pins both to one.

Each benchmark is repeated (repetitions interleaved across them so that machine drift hits
them alike); every repetition runs for at least --min-time seconds. Prints JSON on stdout:
  {"python": ..., "benchmarks": {name: {"unit": ..., "samples": [...], "median": ...}},
   "errors": {name: message}}
and exits 1 when a benchmark failed (the others still run).
Stdlib only.
"""

import argparse
import functools
import json
import os
import multiprocessing as mp
import platform
import re
import statistics
import subprocess
import sys
import time
from multiprocessing.managers import BaseManager, SyncManager

ROUND_TRIP_MSG = b"pingpong"
MESSAGE_SIZE = 1 << 20
BATCH_BYTES = 64 << 20  # bytes per acknowledged batch, as in bench_connection.cpp


def _empty():
    pass


def _pin(cpu):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _echo(conn, other, cpu):
    _pin(cpu)
    other.close()  # our inherited copy of the parent's end
    while True:
        try:
            m = conn.recv_bytes()
        except EOFError:
            return
        conn.send_bytes(m)


def _sink(conn, other, cpu, size, batch):
    _pin(cpu)
    other.close()
    count = 0
    while True:
        try:
            m = conn.recv_bytes()
        except EOFError:
            return
        if len(m) != size:
            raise RuntimeError("unexpected message size %d" % len(m))
        count += 1
        if count == batch:
            count = 0
            conn.send_bytes(b"k")


def _pingpong_events(ping, pong, stop, other, cpu):
    _pin(cpu)
    other.close()
    while True:
        ping.wait()
        ping.clear()
        if stop.value:
            return
        pong.set()


def _pingpong_condition(cond, turn, other, cpu):
    _pin(cpu)
    other.close()
    with cond:
        while True:
            cond.wait_for(lambda: turn.value != 0)
            if turn.value == 2:
                return
            turn.value = 0
            cond.notify()


def _incrementer(v, running, stop, other, cpu):
    _pin(cpu)
    other.close()
    running.value = 1
    while not stop.value:
        with v.get_lock():
            v.value += 1


def _pingpong_events_target(conn, other, cpu, ping, pong, stop):
    _pingpong_events(ping, pong, stop, other, cpu)


def _pingpong_condition_target(conn, other, cpu, cond, turn):
    _pingpong_condition(cond, turn, other, cpu)


def _incrementer_target(conn, other, cpu, v, running, stop):
    _incrementer(v, running, stop, other, cpu)


def _queue_producer(conn, other, cpu, q, stop, payload):
    _pin(cpu)
    other.close()
    while not stop.value:
        q.put(payload)


def _queue_echo(conn, other, cpu, requests, replies):
    _pin(cpu)
    other.close()
    while True:
        x = requests.get()
        if x is None:
            return
        replies.put(x + 1)


def _queue_4x4_producer(q, go, count, payload):
    go.wait()
    for _ in range(count):
        q.put(payload)


def _queue_4x4_consumer(q, go, count):
    go.wait()
    for _ in range(count):
        q.get()


def _increment(x):
    return x + 1


def _cpu_work(seed):
    # Much less work per task than the C++ benchmark's (Python is ~100x slower at this loop);
    # the figure of interest is the 2-worker / 1-worker ratio.
    x = seed | 1
    for _ in range(20000):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
    return x


def _timed(op, min_time):
    """Runs op() until min_time has passed; returns (seconds, calls)."""
    calls = 0
    start = time.perf_counter()
    while True:
        op()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed, calls


class _Standalone:
    """A benchmark without a long-lived child: a context manager with nothing to set up or undo."""

    def __init__(self, ctx):
        self.ctx = ctx

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class StartJoin(_Standalone):
    """Process start + join with the start method `method`, whatever context main() passes."""
    name = "process_start_join/fork"
    method = "fork"
    unit = "s/process"

    def __init__(self, ctx):
        super().__init__(mp.get_context(self.method))

    def op(self):
        p = self.ctx.Process(target=_empty)
        p.start()
        p.join()
        if p.exitcode != 0:
            raise RuntimeError("child exited with %r" % p.exitcode)

    def measure(self, min_time):
        seconds, calls = _timed(self.op, min_time)
        return seconds / calls


class StartJoinSpawn(StartJoin):
    name = "process_start_join/spawn"
    method = "spawn"


class StartJoinForkserver(StartJoin):
    name = "process_start_join/forkserver"
    method = "forkserver"


class _WithChild:
    """A child process on the far end of a duplex Pipe, pinned as `placement` says, always cleaned up."""

    placement = "cross_cpu"

    def __init__(self, ctx, target, *args):
        self.ctx = ctx
        self.target = target
        self.args = args
        self.name = _name(type(self))

    def __enter__(self):
        self.saved_affinity = os.sched_getaffinity(0)
        cpus = sorted(self.saved_affinity)
        if len(cpus) < (2 if self.placement == "cross_cpu" else 1):
            raise RuntimeError("%s needs 2 CPUs" % self.name)
        child_cpu = cpus[1] if self.placement == "cross_cpu" else cpus[0]
        os.sched_setaffinity(0, {cpus[0]})
        self.conn, child_conn = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=self.target, args=(child_conn, self.conn, child_cpu) + self.args,
                                     daemon=True)
        self.proc.start()
        child_conn.close()
        return self

    def measure(self, min_time):
        """Seconds per op(), timed in batches of 100 (subclasses that define op() use this)."""
        def batch():
            for _ in range(100):
                self.op()

        seconds, calls = _timed(batch, min_time)
        return seconds / (calls * 100)

    def __exit__(self, *exc):
        try:
            self.conn.close()
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()
            if exc[0] is None and self.proc.exitcode != 0:
                raise RuntimeError("%s child exited with %r" % (self.name, self.proc.exitcode))
        finally:
            os.sched_setaffinity(0, self.saved_affinity)
        return False


class RoundTrip(_WithChild):
    base_name = "pipe_roundtrip_8b"
    unit = "s/roundtrip"

    def __init__(self, ctx):
        super().__init__(ctx, _echo)

    def op(self):
        self.conn.send_bytes(ROUND_TRIP_MSG)
        if len(self.conn.recv_bytes()) != len(ROUND_TRIP_MSG):
            raise RuntimeError("short echo")


class RoundTripSameCpu(RoundTrip):
    placement = "same_cpu"


class Throughput(_WithChild):
    base_name = "pipe_throughput_1mib"
    unit = "bytes/s"

    def __init__(self, ctx):
        self.batch = max(1, BATCH_BYTES // MESSAGE_SIZE)
        super().__init__(ctx, _sink, MESSAGE_SIZE, self.batch)
        self.payload = b"\x5a" * MESSAGE_SIZE

    def op(self):
        for _ in range(self.batch):
            self.conn.send_bytes(self.payload)
        if self.conn.recv_bytes() != b"k":
            raise RuntimeError("bad acknowledgement")

    def measure(self, min_time):
        seconds, calls = _timed(self.op, min_time)
        return calls * self.batch * MESSAGE_SIZE / seconds


class LockUncontended(_Standalone):
    name = "lock_uncontended"
    unit = "s/acquire+release"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.lock = ctx.Lock()

    def op(self):
        self.lock.acquire()
        self.lock.release()

    def measure(self, min_time):
        lock = self.lock

        def batch():  # 1000 pairs per call keep the timing loop's own cost out of the figure
            for _ in range(1000):
                lock.acquire()
                lock.release()

        seconds, calls = _timed(batch, min_time)
        return seconds / (calls * 1000)


class EventPingPong(_WithChild):
    base_name = "event_pingpong"
    unit = "s/roundtrip"

    def __init__(self, ctx):
        self.ping, self.pong = ctx.Event(), ctx.Event()
        self.stop = ctx.RawValue("i", 0)
        super().__init__(ctx, _pingpong_events_target, self.ping, self.pong, self.stop)

    def __exit__(self, *exc):
        self.stop.value = 1
        self.ping.set()
        return super().__exit__(*exc)

    def op(self):
        self.ping.set()
        self.pong.wait()
        self.pong.clear()



class ConditionPingPong(_WithChild):
    base_name = "condition_pingpong"
    unit = "s/roundtrip"

    def __init__(self, ctx):
        self.cond = ctx.Condition()
        self.turn = ctx.RawValue("i", 0)
        super().__init__(ctx, _pingpong_condition_target, self.cond, self.turn)

    def __exit__(self, *exc):
        with self.cond:
            self.turn.value = 2
            self.cond.notify()
        return super().__exit__(*exc)

    def op(self):
        turn = self.turn
        with self.cond:
            turn.value = 1
            self.cond.notify()
            self.cond.wait_for(lambda: turn.value == 0)



class ValueIncrement(_WithChild):
    base_name = "value_increment"
    unit = "increments/s"

    def __init__(self, ctx):
        self.v = ctx.Value("i", 0)
        self.running, self.stop = ctx.RawValue("i", 0), ctx.RawValue("i", 0)
        super().__init__(ctx, _incrementer_target, self.v, self.running, self.stop)

    def __enter__(self):
        super().__enter__()
        deadline = time.monotonic() + 10
        while not self.running.value:
            if not self.proc.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("%s: the incrementing child did not start" % self.name)
            time.sleep(0.001)
        return self

    def __exit__(self, *exc):
        self.stop.value = 1
        return super().__exit__(*exc)

    def op(self):
        v = self.v
        with v.get_lock():
            v.value += 1

    def measure(self, min_time):
        v = self.v

        def batch():
            for _ in range(1000):
                with v.get_lock():
                    v.value += 1

        with v.get_lock():
            start = v.value
        seconds, _calls = _timed(batch, min_time)
        with v.get_lock():
            end = v.value
        return (end - start) / seconds


class _QueueStream(_WithChild):
    """The child puts `payload` into a bounded Queue until told to stop; the parent get()s."""

    def __init__(self, ctx, payload, maxsize):
        self.q = ctx.Queue(maxsize)
        self.stop = ctx.RawValue("i", 0)
        self.payload = payload
        super().__init__(ctx, _queue_producer, self.q, self.stop, payload)

    def __exit__(self, *exc):
        self.stop.value = 1
        # The child may be blocked in put() on a full queue, and its feeder must flush before it
        # exits: drain until it is gone.
        deadline = time.monotonic() + 10
        while self.proc.is_alive() and time.monotonic() < deadline:
            try:
                self.q.get(timeout=0.05)
            except Exception:
                pass
        return super().__exit__(*exc)

    def op(self):
        if len(self.q.get()) != len(self.payload):
            raise RuntimeError("short item")


class Queue64(_QueueStream):
    base_name = "queue_64b"
    unit = "items/s"

    def __init__(self, ctx):
        super().__init__(ctx, b"\x5a" * 64, 4096)

    def measure(self, min_time):
        q = self.q

        def batch():
            for _ in range(1000):
                q.get()

        seconds, calls = _timed(batch, min_time)
        return calls * 1000 / seconds


class Queue1MiB(_QueueStream):
    base_name = "queue_1mib"
    unit = "bytes/s"

    def __init__(self, ctx):
        super().__init__(ctx, b"\x5a" * MESSAGE_SIZE, 4)

    def measure(self, min_time):
        seconds, calls = _timed(self.op, min_time)
        return calls * MESSAGE_SIZE / seconds


class QueueRoundTrip(_WithChild):
    base_name = "queue_roundtrip"
    unit = "s/roundtrip"

    def __init__(self, ctx):
        self.requests, self.replies = ctx.Queue(), ctx.Queue()
        super().__init__(ctx, _queue_echo, self.requests, self.replies)

    def __exit__(self, *exc):
        self.requests.put(None)
        return super().__exit__(*exc)

    def op(self):
        self.requests.put(1)
        if self.replies.get() != 2:
            raise RuntimeError("wrong reply")


class Queue4x4(_Standalone):
    name = "queue_64b_4x4"
    unit = "items/s"
    ITEMS = 40000

    def run_once(self):
        ctx = self.ctx
        q, go = ctx.Queue(4096), ctx.Event()
        share = self.ITEMS // 4
        procs = [ctx.Process(target=_queue_4x4_producer, args=(q, go, share, b"\x5a" * 64), daemon=True)
                 for _ in range(4)]
        procs += [ctx.Process(target=_queue_4x4_consumer, args=(q, go, share), daemon=True) for _ in range(4)]
        for p in procs:
            p.start()
        time.sleep(0.05)
        start = time.perf_counter()
        go.set()
        for p in procs[4:]:
            p.join(120)
        elapsed = time.perf_counter() - start
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
        if any(p.exitcode != 0 for p in procs):
            raise RuntimeError("a producer or consumer failed")
        return elapsed

    def op(self):
        pass

    def measure(self, min_time):
        total, runs = 0.0, 0
        while total < min_time or runs == 0:
            total += self.run_once()
            runs += 1
        return runs * self.ITEMS / total


class _PoolBench(_Standalone):
    """A Pool (or ProcessPoolExecutor) of `workers`, made once, always shut down."""
    workers = 2
    executor = False

    def __enter__(self):
        if self.executor:
            import concurrent.futures
            self.pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=self.ctx)
        else:
            self.pool = self.ctx.Pool(self.workers)
        return self

    def __exit__(self, *exc):
        if self.executor:
            self.pool.shutdown(cancel_futures=True)
        else:
            self.pool.terminate()
            self.pool.join()
        return False


class _MapTrivial(_PoolBench):
    unit = "tasks/s"
    n = 20000
    chunksize = 1

    def op(self):
        if self.executor:
            out = list(self.pool.map(_increment, range(self.n), chunksize=self.chunksize or 1))
        elif self.chunksize:
            out = self.pool.map(_increment, range(self.n), self.chunksize)
        else:
            out = self.pool.map(_increment, range(self.n))
        if out[-1] != self.n:
            raise RuntimeError("wrong map result")

    def measure(self, min_time):
        seconds, calls = _timed(self.op, min_time)
        return calls * self.n / seconds


class PoolMapChunk1(_MapTrivial):
    name = "pool_map_trivial_chunksize1"


class PoolMapDefault(_MapTrivial):
    name = "pool_map_trivial_default"
    n = 1000000
    chunksize = 0


class PpeMapChunk1(_MapTrivial):
    name = "ppe_map_trivial_chunksize1"
    executor = True


class PpeMapPoolChunks(_MapTrivial):
    name = "ppe_map_trivial_poolchunks"
    executor = True
    n = 1000000
    chunksize = 125000  # Pool's rule: ceil(n / (4 * workers))


class PoolApplyAsyncRoundTrip(_PoolBench):
    name = "pool_apply_async_roundtrip"
    unit = "s/roundtrip"

    def op(self):
        if self.pool.apply_async(_increment, (7,)).get() != 8:
            raise RuntimeError("wrong result")

    def measure(self, min_time):
        seconds, calls = _timed(self.op, min_time)
        return seconds / calls


class PoolCpuBound2(_PoolBench):
    name = "pool_cpu_bound_2"
    unit = "tasks/s"

    def op(self):
        self.pool.map(_cpu_work, range(16), 1)

    def measure(self, min_time):
        seconds, calls = _timed(self.op, min_time)
        return calls * 16 / seconds


class PoolCpuBound1(PoolCpuBound2):
    name = "pool_cpu_bound_1"
    workers = 1


class PoolStart2(_Standalone):
    name = "pool_start_2"
    unit = "s/pool"

    def op(self):
        pool = self.ctx.Pool(2)
        pool.map(_increment, range(2), 1)
        pool.close()
        pool.join()

    def measure(self, min_time):
        seconds, calls = _timed(self.op, min_time)
        return seconds / calls


class _WithManager(_Standalone):
    unit = "s/op"

    def __enter__(self):
        self.manager = self.ctx.Manager()
        self.d = self.manager.dict()
        for i in range(100):
            self.d[i] = i
        self.l = self.manager.list()
        self.i = 0
        return self

    def __exit__(self, *exc):
        self.manager.shutdown()
        return False

    def measure(self, min_time):
        seconds, calls = _timed(self.op, min_time)
        return seconds / calls


class ManagerDictSet(_WithManager):
    name = "manager_dict_set"

    def op(self):
        self.d[self.i % 100] = self.i
        self.i += 1


class ManagerDictSetPinned(ManagerDictSet):
    """The same, the client pinned to the first allowed CPU and every server thread to the second
    (cross_cpu) or the same one (same_cpu)."""
    base_name = "manager_dict_set_pinned"
    placement = "cross_cpu"

    def __enter__(self):
        self.saved_affinity = os.sched_getaffinity(0)
        cpus = sorted(self.saved_affinity)
        if len(cpus) < (2 if self.placement == "cross_cpu" else 1):
            raise RuntimeError("this placement needs 2 CPUs")
        os.sched_setaffinity(0, {cpus[0]})
        super().__enter__()
        server_cpu = cpus[1] if self.placement == "cross_cpu" else cpus[0]
        pid = self.manager._process.pid
        for task in os.listdir("/proc/%d/task" % pid):
            os.sched_setaffinity(int(task), {server_cpu})
        return self

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            os.sched_setaffinity(0, self.saved_affinity)


class ManagerDictSetPinnedSameCpu(ManagerDictSetPinned):
    placement = "same_cpu"


class ManagerDictGet(_WithManager):
    name = "manager_dict_get"

    def op(self):
        if self.d[self.i % 100] != self.i % 100:
            raise RuntimeError("wrong value")
        self.i += 1


class ManagerQueuePutGet(_WithManager):
    name = "manager_queue_put_get"

    def __enter__(self):
        super().__enter__()
        self.q = self.manager.Queue()
        return self

    def op(self):
        self.q.put(self.i)
        if self.q.get() != self.i:
            raise RuntimeError("wrong item")
        self.i += 1


class ManagerLockAcquireRelease(_WithManager):
    name = "manager_lock_acquire_release"

    def __enter__(self):
        super().__enter__()
        self.lock = self.manager.Lock()
        return self

    def op(self):
        self.lock.acquire()
        self.lock.release()


class ManagerListAppend(_WithManager):
    name = "manager_list_append"

    def op(self):
        self.l.append(self.i)
        self.i += 1

    def measure(self, min_time):
        total, calls = 0.0, 0
        while total < min_time:
            seconds, n = _timed_calls(self.op, 10000)
            total += seconds
            calls += n
            self.l[:] = []
        return total / calls


def _timed_calls(op, n):
    start = time.perf_counter()
    for _ in range(n):
        op()
    return time.perf_counter() - start, n


def _manager_writer(d, conn, who, count):
    conn.recv()
    for i in range(count):
        d[who * 1000000 + i % 1000] = i
    conn.send(1)


class ManagerTwoWriters(_WithManager):
    name = "manager_two_writers"
    unit = "sets/s"
    each = 2000

    def op(self):
        pipes = [self.ctx.Pipe() for _ in range(2)]
        procs = [self.ctx.Process(target=_manager_writer, args=(self.d, there, who + 1, self.each))
                 for who, (here, there) in enumerate(pipes)]
        for p in procs:
            p.start()
        self.d[0] = 0
        start = time.perf_counter()
        for here, _ in pipes:
            here.send(1)
        for here, _ in pipes:
            here.recv()
        elapsed = time.perf_counter() - start
        for p in procs:
            p.join()
        return elapsed

    def measure(self, min_time):
        total, sets = 0.0, 0
        while total < min_time:
            total += self.op()
            sets += 2 * self.each
        return sets / total


class ManagerStartShutdown(_Standalone):
    name = "manager_start_shutdown"
    unit = "s/manager"

    def op(self):
        m = self.ctx.Manager()
        m.shutdown()

    def measure(self, min_time):
        seconds, calls = _timed(self.op, min_time)
        return seconds / calls


# Remote managers (issue 15): the distributed-processes tutorial's shape over TCP loopback.
_REMOTE_QUEUES = {}


def _remote_queue(name):
    import queue
    return _REMOTE_QUEUES.setdefault(name, queue.Queue())


class _RemoteQueueManager(BaseManager):
    pass


_RemoteQueueManager.register("get_queue", callable=functools.partial(_remote_queue, "q"))
_RemoteQueueManager.register("get_task_queue", callable=functools.partial(_remote_queue, "tasks"))
_RemoteQueueManager.register("get_result_queue", callable=functools.partial(_remote_queue, "results"))


class _ClientManager(BaseManager):
    pass


for _typeid in ("get_queue", "get_task_queue", "get_result_queue"):
    _ClientManager.register(_typeid)


class RemoteQueuePutGet(_Standalone):
    """A remote manager on 127.0.0.1 gives a queue.Queue (register('get_queue', callable)); a client
    that connected to it does put(i); get()."""
    name = "remote_queue_put_get"
    unit = "s/op"

    def __enter__(self):
        self.master = _RemoteQueueManager(address=("127.0.0.1", 0), authkey=b"bench")
        self.master.start()
        self.client = _ClientManager(address=self.master.address, authkey=b"bench")
        self.client.connect()
        self.q = self.client.get_queue()
        self.i = 0
        return self

    def __exit__(self, *exc):
        del self.q
        self.master.shutdown()
        return False

    def op(self):
        self.q.put(self.i)
        if self.q.get() != self.i:
            raise RuntimeError("wrong item")
        self.i += 1

    def measure(self, min_time):
        seconds, calls = _timed(self.op, min_time)
        return seconds / calls


def _remote_worker(address, conn):
    m = _ClientManager(address=address, authkey=b"bench")
    m.connect()
    tasks, results = m.get_task_queue(), m.get_result_queue()
    conn.send(1)
    while True:
        n = tasks.get()
        if n < 0:
            return
        results.put(n * n)


class RemoteTaskMasterTwoWorkers(_Standalone):
    """The tutorial's master/worker shape: 2 000 tasks through a remote manager's task queue to two
    worker processes, which put n * n on its result queue; timed from the first put to the last get."""
    name = "remote_task_master_two_workers"
    unit = "tasks/s"
    tasks = 2000

    def __enter__(self):
        self.master = _RemoteQueueManager(address=("127.0.0.1", 0), authkey=b"bench")
        self.master.start()
        self.task_q, self.result_q = self.master.get_task_queue(), self.master.get_result_queue()
        self.workers = []
        for _ in range(2):
            here, there = self.ctx.Pipe()
            p = self.ctx.Process(target=_remote_worker, args=(self.master.address, there), daemon=True)
            p.start()
            here.recv()
            self.workers.append(p)
        return self

    def __exit__(self, *exc):
        for _ in self.workers:
            self.task_q.put(-1)
        for p in self.workers:
            p.join(5)
            if p.is_alive():
                p.kill()
        del self.task_q, self.result_q
        self.master.shutdown()
        return False

    def op(self):
        start = time.perf_counter()
        for n in range(self.tasks):
            self.task_q.put(n)
        total = sum(self.result_q.get() for _ in range(self.tasks))
        if total != sum(n * n for n in range(self.tasks)):
            raise RuntimeError("wrong results")
        return time.perf_counter() - start

    def measure(self, min_time):
        total, done = 0.0, 0
        while total < min_time:
            total += self.op()
            done += self.tasks
        return done / total


class _PythonClientQueue(_Standalone):
    """A Python SyncManager client over TCP loopback doing q.put(i); q.get() on a Queue of the
    server: its own (CPython's), or polyproc's (tests/sync_manager_server, named by the environment
    variable POLYPROC_SYNC_MANAGER_SERVER)."""
    unit = "s/op"

    def start_server(self):
        raise NotImplementedError

    def __enter__(self):
        self.server = None
        address = self.start_server()
        self.m = SyncManager(address=address, authkey=b"bench")
        self.m.connect()
        self.q = self.m.Queue()
        self.i = 0
        return self

    def __exit__(self, *exc):
        del self.q
        if self.server is not None:
            self.server.stdin.close()
            self.server.wait(10)
        else:
            self.master.shutdown()
        return False

    op = RemoteQueuePutGet.op
    measure = RemoteQueuePutGet.measure


class PythonClientOnCPythonServer(_PythonClientQueue):
    name = "python_client_queue_put_get/cpython_server"

    def start_server(self):
        self.master = SyncManager(address=("127.0.0.1", 0), authkey=b"bench")
        self.master.start()
        return self.master.address


class PythonClientOnPolyprocServer(_PythonClientQueue):
    name = "python_client_queue_put_get/polyproc_server"

    def start_server(self):
        binary = os.environ.get("POLYPROC_SYNC_MANAGER_SERVER")
        if not binary:
            raise RuntimeError("POLYPROC_SYNC_MANAGER_SERVER names no server program")
        self.server = subprocess.Popen([binary, "127.0.0.1:0", "bench"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
        host, port = self.server.stdout.readline().strip().rsplit(":", 1)
        return (host, int(port))


def _name(kind):
    return "%s/%s" % (kind.base_name, kind.placement) if hasattr(kind, "base_name") else kind.name


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.4, help="seconds per repetition of each benchmark")
    ap.add_argument("--smoke", action="store_true", help="one short repetition of each (checks that it runs)")
    ap.add_argument("--filter", default="", help="run only the benchmarks whose name matches this regular "
                    "expression (re.search; a plain substring works)")
    args = ap.parse_args()
    if args.smoke:
        args.repetitions, args.min_time = 1, 0.01

    ctx = mp.get_context("fork")
    # Spawn and forkserver last: they leave a forkserver and a resource tracker running, which the
    # fork benchmarks before them should not share the machine with.
    kinds = [k for k in (StartJoin, RoundTrip, RoundTripSameCpu, Throughput, LockUncontended, EventPingPong,
                         ConditionPingPong, ValueIncrement, Queue64, QueueRoundTrip, Queue4x4, Queue1MiB,
                         PoolMapChunk1, PoolMapDefault, PpeMapChunk1, PpeMapPoolChunks, PoolApplyAsyncRoundTrip,
                         PoolCpuBound2, PoolCpuBound1, PoolStart2, ManagerDictSet, ManagerDictSetPinned,
                         ManagerDictSetPinnedSameCpu, ManagerDictGet, ManagerListAppend, ManagerQueuePutGet,
                         ManagerLockAcquireRelease,
                         ManagerTwoWriters, ManagerStartShutdown, RemoteQueuePutGet, RemoteTaskMasterTwoWorkers,
                         PythonClientOnCPythonServer, PythonClientOnPolyprocServer, StartJoinSpawn,
                         StartJoinForkserver)
             if re.search(args.filter, _name(k))]
    samples = {_name(k): [] for k in kinds}
    units = {_name(k): k.unit for k in kinds}
    errors = {}
    for _ in range(args.repetitions):
        for kind in kinds:
            name = _name(kind)
            if name in errors:
                continue
            try:
                with kind(ctx) as bench:
                    bench.op()  # warm-up: first-call costs out of the measurement
                    samples[name].append(bench.measure(args.min_time))
            except Exception as e:  # reported in the JSON; the other benchmarks still run
                errors[name] = "%s: %s" % (type(e).__name__, e)

    out = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "start_method": "fork",
        "repetitions": args.repetitions,
        "min_time": args.min_time,
        "benchmarks": {
            name: {"unit": units[name], "samples": xs, "median": statistics.median(xs)}
            for name, xs in samples.items() if name not in errors
        },
        "errors": errors,
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
