// task_worker — the "distributed processes" tutorial's worker: it connects to the master's manager
// (its address and authkey), takes up to ten tasks from its task queue and puts back strings like
// "3 * 3 = 9".
//
//   class QueueManager(BaseManager): pass
//   QueueManager.register('get_task_queue')
//   QueueManager.register('get_result_queue')
//   server_addr = '127.0.0.1'
//   print('Connect to server %s...' % server_addr)
//   m = QueueManager(address=(server_addr, 5000), authkey=b'abc')
//   m.connect()
//   task = m.get_task_queue(); result = m.get_result_queue()
//   for i in range(10):
//       try:
//           n = task.get(timeout=1)
//           print('run task %d * %d...' % (n, n))
//           r = '%d * %d = %d' % (n, n, n*n)
//           time.sleep(1)
//           result.put(r)
//       except queue.Empty:
//           print('task queue is empty.')
//   print('worker exit.')
//
// A client registers a typeid by name only; in C++ that is manager.create("typeid"), wrapped in
// the proxy type the object has. The master may be task_master or Python's task_master.py.
// Usage: task_worker [server_addr] [port] [seconds per task] (127.0.0.1, 5000 and 1 by default).
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;
using namespace std::chrono_literals;

int run(int argc, char** argv) {
    const std::string server_addr = argc > 1 ? argv[1] : "127.0.0.1";
    const auto port = static_cast<std::uint16_t>(argc > 2 ? std::stoi(argv[2]) : 5000);
    const auto per_task = std::chrono::duration<double>(argc > 3 ? std::stod(argv[3]) : 1.0);

    std::cout << "Connect to server " << server_addr << "..." << std::endl;
    mp::BaseManager m(mp::InetAddress{server_addr, port}, "abc");
    m.connect();
    mp::QueueProxy<int> task(m.create("get_task_queue"));
    mp::QueueProxy<std::string> result(m.create("get_result_queue"));
    for (int i = 0; i < 10; ++i) {
        try {
            const long long n = task.get(true, 1s);
            std::cout << "run task " << n << " * " << n << "..." << std::endl;
            const std::string r = std::to_string(n) + " * " + std::to_string(n) + " = " + std::to_string(n * n);
            std::this_thread::sleep_for(per_task);
            result.put(r);
        } catch (const mp::Empty&) {
            std::cout << "task queue is empty." << std::endl;
        }
    }
    std::cout << "worker exit." << std::endl;
    return 0;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);
    try {
        return run(argc, argv);
    } catch (const mp::ProcessError& e) {  // the master shut its manager down, or died: said at once
        std::cerr << "task_worker: " << e.what() << std::endl;
        return 1;
    }
}
