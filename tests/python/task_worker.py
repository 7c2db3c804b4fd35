# The "distributed processes" tutorial's task_worker.py, as written, except that the server's
# address, port and the seconds a task takes come from sys.argv.
import time, sys, queue
from multiprocessing.managers import BaseManager

class QueueManager(BaseManager):
    pass

QueueManager.register('get_task_queue')
QueueManager.register('get_result_queue')
server_addr = sys.argv[1] if len(sys.argv) > 1 else '127.0.0.1'
port = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
per_task = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
print('Connect to server %s...' % server_addr, flush=True)
m = QueueManager(address=(server_addr, port), authkey=b'abc')
m.connect()
task = m.get_task_queue()
result = m.get_result_queue()
for i in range(10):
    try:
        n = task.get(timeout=1)
        print('run task %d * %d...' % (n, n), flush=True)
        r = '%d * %d = %d' % (n, n, n*n)
        time.sleep(per_task)
        result.put(r)
    except queue.Empty:
        print('task queue is empty.', flush=True)
print('worker exit.', flush=True)
