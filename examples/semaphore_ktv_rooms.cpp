// semaphore_ktv_rooms — seed 003 (003_c397d4ee5c18e9b7.txt), lines 2038-2061: a Semaphore lets a
// fixed number of processes in at once, where a Lock lets in one. A KTV (karaoke) place has 4
// rooms, Semaphore(4); 13 users come, each takes a room (acquire), stays a random time and
// leaves (release); the fifth user waits until someone leaves.
//
// Changes: the stay is 0.1-0.3 s (random.randint(1, 3) tenths) instead of random.randint(0, 3)
// seconds, so the program takes about a second, and never 0, so that the first four users are
// surely inside together. Printed text in English. Added: the program checks the semaphore's
// promise. Two shared counters, one lock: `inside` (the users in a room right now) and `most`
// (the most ever seen inside at once) share inside's lock, as Python's Value('i', 0, lock=...)
// would; the main process prints the maximum and exits with status 1 if it exceeded 4.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

void go_ktv(mp::Semaphore& sem, const std::string& user, mp::Value<int>& inside, mp::Value<int>& most) {
    sem.acquire();
    {
        std::lock_guard guard(inside);  // added: count this user in
        inside.set_value(inside.value() + 1);
        most.set_value(std::max(most.value(), inside.value()));
    }
    std::cout << user << " got a KTV room\n" << std::flush;
    std::mt19937 gen(std::random_device{}());
    std::uniform_int_distribution<int> randint(1, 3);
    std::this_thread::sleep_for(std::chrono::milliseconds(100) * randint(gen));  // each user stays a different time
    {
        std::lock_guard guard(inside);  // added: count this user out
        inside.set_value(inside.value() - 1);
    }
    sem.release();
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Semaphore sem(4);
    mp::Value<int> inside(0);                    // added
    mp::Value<int> most(0, inside.get_lock());  // added: guarded by the same lock
    std::vector<mp::Process> p_l;
    for (int i = 0; i < 13; ++i) {
        mp::Process& p = p_l.emplace_back(go_ktv, sem, "user" + std::to_string(i), inside, most);
        p.start();
    }

    for (auto& i : p_l) i.join();
    // Added: the semaphore's promise, checked.
    std::cout << "most users inside at once: " << most.value() << " (rooms: 4)\n";
    if (most.value() > 4) {
        std::cerr << "the semaphore let more than 4 users in\n";
        return 1;
    }
    std::cout << "=====>\n";
}
