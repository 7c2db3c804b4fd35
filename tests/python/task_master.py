# The "distributed processes" tutorial's task_master.py, as written, except that the port comes
# from sys.argv[1] (0: a free one, printed first) so that tests can run it side by side.
import random, time, queue, sys
from multiprocessing.managers import BaseManager

task_queue = queue.Queue()
result_queue = queue.Queue()

class QueueManager(BaseManager):
    pass

QueueManager.register('get_task_queue', callable=lambda: task_queue)
QueueManager.register('get_result_queue', callable=lambda: result_queue)
port = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
manager = QueueManager(address=('', port), authkey=b'abc')
manager.start()
if port == 0:
    print('Listening on port %d' % manager.address[1], flush=True)
task = manager.get_task_queue()
result = manager.get_result_queue()
for i in range(10):
    n = random.randint(0, 10000)
    print('Put task %d...' % n, flush=True)
    task.put(n)
print('Try get results...', flush=True)
for i in range(10):
    r = result.get(timeout=10)
    print('Result: %s' % r, flush=True)
manager.shutdown()
print('master exit.', flush=True)
