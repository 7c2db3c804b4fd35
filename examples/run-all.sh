#!/usr/bin/env bash
# Runs every ported seed example, in the order of the tutorials' story: fork, Process, join,
# several children, subclasses, isolation, terminate, daemons, pipes, then locks, shared values,
# semaphores, events, queues, pools and managers. This is polyproc's demo.
#
# Usage: examples/run-all.sh <build-dir>     (e.g. build/default)
# The examples run in a temporary directory (multi_children_file_append and the ticket examples
# write files there).
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 <build-dir>" >&2
    exit 2
fi
bindir=$(cd "$1" 2>/dev/null && pwd)/examples
if [ ! -d "$bindir" ]; then
    echo "$0: no examples directory in '$1' (configure with -DPOLYPROC_BUILD_EXAMPLES=ON and build)" >&2
    exit 2
fi

examples=(
    "fork_getpid|os.fork() returns twice: 0 in the child, the child's pid in the parent"
    "fork_orphan|the parent exits at once; the orphaned child is adopted by another process"
    "process_target_args_join|Process(target, args) runs a function in a child; join() waits for it"
    "process_info_pids|the child's parent process is the main process"
    "process_async_pids|start() returns at once: parent and child run at the same time"
    "process_args_no_join|arguments for the target; without join() the parent does not wait"
    "join_sync|join() turns asynchronous execution into synchronous"
    "multi_children_pids|two children in a list, started, then joined; same parent, own pids"
    "multi_children_join_all|ten children started in a loop and joined after it"
    "multi_children_unordered|children run in the order the scheduler picks, not creation order"
    "multi_children_file_append|children share the file system, not memory: one file, ten writers"
    "multi_children_cpu_list|two CPU-bound children, started and joined"
    "sleeper_parent_child|the parent goes on after start() and blocks in join()"
    "subclass_run|subclass Process and override run(); in the child, pid() is getpid()"
    "myprocess_result_lost|a result stored on the process object never reaches the parent"
    "data_isolation_global|data is not shared: the child's change to a global stays in the child"
    "terminate_is_alive|terminate() sends SIGTERM; is_alive() turns False shortly after"
    "process_name_pid|name a process yourself; p.pid() in the parent is the child's pid"
    "zombie_no_join|a finished child stays a zombie until join() reaps it"
    "daemon_process|a daemonic child is killed when the main process's code ends"
    "pipe_child_send_parent_recv|the child sends an object through a Pipe, the parent receives it"
    "pipe_myprocess_three_children|three children send results through one pipe end"
    "pipe_duplex_local|a duplex pipe: both ends send and receive, even in one process"
    "pipe_eoferror_close|recv() raises EOFError once every copy of the other end is closed"
    "pipe_none_sentinel|an end marker (None) instead of closing the pipe"
    "pipe_producer_consumer_eof|producer and consumer each close the end they do not use"
    "lock_serializes_work|a Lock makes concurrent work serial: each running/done pair stays together"
    "ticket_race_no_lock|ten buyers, one ticket in a JSON file, no lock: every buyer is told it bought it"
    "ticket_lock|the same with a Lock around the purchase: exactly one buyer gets the ticket"
    "value_array_shared|a Value and an Array in shared memory: the child's changes reach the parent"
    "semaphore_ktv_rooms|Semaphore(4): never more than 4 users inside at once (checked)"
    "event_traffic_lights|an Event as a traffic light: the cars wait for green"
    "queue_child_put_parent_get|the child puts an object on a Queue, the parent's get() waits for it"
    "queue_writer_reader_terminate|a writer and a reader share a Queue; the endless reader is terminated"
    "queue_myprocess_results|children put their results on a Queue: the fix for the lost MyProcess result"
    "queue_maxsize_nowait|Queue(3): put_nowait raises Full, get_nowait raises Empty; full(), empty()"
    "queue_put_get_timeout|put and get with block and timeout: Full and Empty, at once or after the timeout"
    "queue_shared_by_children|one Queue shared by the main process and two children, first in first out"
    "queue_ten_putters_ten_getters|ten processes put, ten get, through a Queue(3): each message taken once"
    "queue_producer_consumer_stuck|producer/consumer: without an end marker the consumer waits in get() forever"
    "queue_producer_sends_none|the producer ends with None; the consumer stops when it gets it"
    "queue_main_sends_none|the main process puts the None end marker, after joining the producer"
    "queue_producer_consumer_none|three producers, two consumers: one None per consumer, after the producers"
    "queue_joinable_daemon_consumers|JoinableQueue: producers join() until all is processed; daemonic consumers"
    "pool_map_five|Pool(5).map(f, [1, 2, 3]): the results in input order"
    "pool_apply_async_default_size|apply_async, close() then join(): a Pool(4) runs 4 tasks at once, the 5th waits for a free worker"
    "pool_map_imap_upper|map returns the list of results; imap yields them one by one, in input order"
    "pool_apply_async_get_timeout|7 apply_async tasks on a Pool(5): results kept in a list, then get(timeout) on each"
    "pool_map_unordered_timeout|map, imap_unordered, apply_async and get(timeout): TimeoutError on a task that sleeps"
    "pool_map_vs_processes|map over any items; 100 tasks on a Pool(5) against 100 Process objects (timed)"
    "pool_apply_sync_squares|apply is synchronous: 10 tasks one after the other on a Pool(3)"
    "pool_apply_async_squares|apply_async: 3 tasks at a time; close(), join(), then get() in submission order"
    "pool_apply_async_hello|apply_async returns result objects at once; get() after join() gives the results"
    "pool_apply_hello|apply returns the results themselves, one task at a time"
    "pool_callback_in_main|a callback gets the task's result and runs in the main process"
    "pool_crawler_callback|a crawler: workers fetch (local) pages, a callback in the main process parses them"
    "pool_crawler_regex|a crawler whose callback extracts films from a (local) page with a regex"
    "pool_collect_without_callback|no callback: join the pool, then collect every result with get()"
    "pool_socket_server_upper|a TCP server on loopback: each accepted connection is handled by a Pool(4) worker (the socket travels as mp::DupFd); six clients, four served at once"
    "manager_dict_list|a manager's server process holds a dict and a list; a child changes them through proxies, the parent prints them"
    "manager_dict_lock_count|100 processes decrement a managed dict's count under one Lock; it ends at 0"
    "manager_register_maths|user classes registered with a manager: Python's MathsClass, and a ledger four processes deposit into"
)

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
cd "$workdir" || exit 1

status=0
for entry in "${examples[@]}"; do
    slug=${entry%%|*}
    description=${entry#*|}
    echo "=== $slug: $description"
    if [ ! -x "$bindir/example_$slug" ]; then
        echo "(not built: $bindir/example_$slug)"
        status=1
        continue
    fi
    # Through a pipe, so that we also wait for processes that outlive the example (the orphan
    # in fork_orphan) before the next header.
    "$bindir/example_$slug" | cat
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        echo "(exit status $rc)"
        status=1
    fi
    echo
done
# The distributed-processes tutorial (issue 15): a master on TCP, a worker that connects to it.
echo "=== task_master + task_worker: a manager on TCP gives two queues; a worker takes the tasks and puts back their squares"
if [ -x "$bindir/example_task_master" ] && [ -x "$bindir/example_task_worker" ]; then
    "$bindir/example_task_master" 0 > master.out 2>&1 &
    master=$!
    port=""
    for _ in $(seq 100); do  # it prints its port first
        port=$(sed -n 's/^Listening on port \([0-9]*\)$/\1/p' master.out)
        [ -n "$port" ] && break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "(the master did not start)"
        kill "$master" 2>/dev/null
        status=1
    else
        "$bindir/example_task_worker" 127.0.0.1 "$port" 0.05 | sed 's/^/    worker: /'
        if ! wait "$master"; then
            status=1
        fi
        sed 's/^/    master: /' master.out
    fi
else
    echo "(not built)"
    status=1
fi
echo
# The MPI pool (issue 16): seed 002's CPU-heavy list_append through Pool.map, on the ranks of an
# MPI job (rank 0 runs main, ranks 1 and 2 are the pool's workers). Only where polyproc::mpi was built.
if [ -x "$bindir/example_pool_mpi_list_append" ] && command -v mpiexec > /dev/null; then
    echo "=== pool_mpi_list_append: mpiexec -n 3, the pool's workers are MPI ranks 1 and 2"
    if ! OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
            mpiexec -n 3 "$bindir/example_pool_mpi_list_append"; then
        status=1
    fi
    echo
fi
exit $status
