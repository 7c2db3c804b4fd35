// manager_dict_lock_count — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1996-2020: 100 processes
// each decrement dic['count'] of a manager's dict({'count': 100}) under one Lock; it ends at 0.
// Without the lock, two processes can read the same count and both write count - 1: a read and a
// write are two calls to the server, and the lock is what makes them one step.
//
// Python's `with Manager() as m:` is the manager's scope here: it shuts down when `m` goes.
#include <iostream>
#include <mutex>
#include <vector>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

void work(mp::DictProxy<> d, mp::Lock lock) {
    std::lock_guard guard(lock);  // with lock:
    d["count"] = d["count"].value().as_int() - 1;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Lock lock;
    auto m = mp::Manager();
    auto dic = m.dict(mp::Object::dict({{"count", 100}}));
    std::vector<mp::Process> p_l;
    for (int i = 0; i < 100; ++i) {
        mp::Process p(work, dic, lock);
        p.start();
        p_l.push_back(std::move(p));
    }
    for (auto& p : p_l) p.join();
    std::cout << dic << "\n";
}
