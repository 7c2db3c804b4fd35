// queue_producer_consumer_none — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1658-1709: several
// producers and several consumers. Three cooks make two items each (bun, bone and slop); two
// eaters share the queue. The queue is process-safe, so an end marker taken by one consumer is
// not seen by the other: the main process must put one None per consumer, after all the
// producers have finished (text at line 1658, which calls this "a very low way" of solving it;
// JoinableQueue, in queue_joinable_daemon_consumers, is the better one).
//
// Changes:
// - The seed never starts c2 (it creates c1 and c2 but calls only c1.start()); c1 then eats
//   everything and the second None is left on the queue. Here c2 is started too, as the two None
//   markers intend.
// - The scraper moved the second half of the main block (from p3 on) to column 0, outside
//   `if __name__ == '__main__':` (harmless with fork); here it is all in main.
// - The seed's sleeps are random.randint(1, 3) seconds for both; here a producer takes 10-30 ms
//   per item and a consumer 100-300 ms (randint(1, 3) times 10 ms and 100 ms), so that all the
//   producing comes first, then the main process's line (it waits for the producers only), then
//   the eating, in an order of the scheduler's choosing.
// - Printed text in English, without the colour escapes: 包子 is "bun", 骨头 "bone" and 泔水
//   "slop". An item that may be None is a std::optional<std::string>. As in Python, the
//   consumers are not joined: the program waits for them at exit.
#include <chrono>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;
using namespace std::chrono_literals;

// time.sleep(random.randint(1, 3)), in units of `unit`
void random_sleep(std::mt19937& gen, std::chrono::milliseconds unit) {
    std::uniform_int_distribution<int> randint(1, 3);
    std::this_thread::sleep_for(unit * randint(gen));
}

void consumer(mp::Queue<std::optional<std::string>>& q) {
    std::mt19937 gen(std::random_device{}());
    while (true) {
        std::optional<std::string> res = q.get();
        if (!res) break;  // got an end marker: stop
        random_sleep(gen, 100ms);
        std::cout << getpid() << " eats " << *res << "\n" << std::flush;
    }
}

void producer(const std::string& name, mp::Queue<std::optional<std::string>>& q) {
    std::mt19937 gen(std::random_device{}());
    for (int i = 0; i < 2; ++i) {
        random_sleep(gen, 10ms);
        std::string res = name + std::to_string(i);
        q.put(res);
        std::cout << getpid() << " produced " << res << "\n" << std::flush;
    }
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Queue<std::optional<std::string>> q;
    // The producers: the cooks
    mp::Process p1(producer, std::string("bun"), q);
    mp::Process p2(producer, std::string("bone"), q);
    mp::Process p3(producer, std::string("slop"), q);

    // The consumers: the eaters
    mp::Process c1(consumer, q);
    mp::Process c2(consumer, q);

    // Go
    p1.start();
    p2.start();
    p3.start();
    c1.start();
    c2.start();  // restored: the seed never starts c2

    p1.join();  // every producer must have finished before the end markers go in
    p2.join();
    p3.join();
    q.put(std::nullopt);  // one end marker per consumer
    q.put(std::nullopt);  // put the end marker
    std::cout << "main\n" << std::flush;
}
