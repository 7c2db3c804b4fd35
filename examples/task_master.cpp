// task_master — the "distributed processes" tutorial's master: a BaseManager on TCP port 5000 with
// authkey "abc" gives two queues to whoever connects; the master puts ten random ints as tasks and
// prints the ten results that workers, on this host or others, put back.
//
//   task_queue = queue.Queue(); result_queue = queue.Queue()
//   class QueueManager(BaseManager): pass
//   QueueManager.register('get_task_queue', callable=lambda: task_queue)
//   QueueManager.register('get_result_queue', callable=lambda: result_queue)
//   manager = QueueManager(address=('', 5000), authkey=b'abc')
//   manager.start()
//   task = manager.get_task_queue(); result = manager.get_result_queue()
//   for i in range(10):
//       n = random.randint(0, 10000); print('Put task %d...' % n); task.put(n)
//   print('Try get results...')
//   for i in range(10):
//       r = result.get(timeout=10); print('Result: %s' % r)
//   manager.shutdown(); print('master exit.')
//
// Python's callable returns one queue.Queue every time; in C++, register_shared names the
// server's own Queue. Its workers may be task_worker, or Python's task_worker.py: the wire is
// Python's. Usage: task_master [port] (5000 when not given; 0 picks a free port, printed first).
#include <iostream>
#include <random>
#include <string>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
    mp::init(argc, argv);
    const auto port = static_cast<std::uint16_t>(argc > 1 ? std::stoi(argv[1]) : 5000);

    mp::BaseManager manager(mp::InetAddress{"", port}, "abc");
    manager.register_shared("get_task_queue", "Queue");
    manager.register_shared("get_result_queue", "Queue");
    manager.start();
    if (port == 0) std::cout << "Listening on port " << std::get<mp::InetAddress>(manager.address()).port << std::endl;
    mp::QueueProxy<int> task(manager.create("get_task_queue"));
    mp::QueueProxy<std::string> result(manager.create("get_result_queue"));

    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<int> randint(0, 10000);
    for (int i = 0; i < 10; ++i) {
        const int n = randint(random);
        std::cout << "Put task " << n << "..." << std::endl;
        task.put(n);
    }
    std::cout << "Try get results..." << std::endl;
    for (int i = 0; i < 10; ++i) std::cout << "Result: " << result.get(true, 10s) << std::endl;
    manager.shutdown();
    std::cout << "master exit." << std::endl;
}
