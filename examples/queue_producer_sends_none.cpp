// queue_producer_sends_none — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1579-1609: the fix for
// queue_producer_consumer_stuck (text at line 1575): when the producer has made everything, it
// puts an end marker, None, on the queue; the consumer stops when it gets it, so the program
// ends. The producer makes five buns here.
//
// Changes: the sleeps of random.randint(1, 3) seconds are 20-60 ms (randint(1, 3) times 20 ms).
// Printed text in English, without the colour escapes; 包子 (steamed bun) is "bun". An item that
// may be None is a std::optional<std::string>. As in Python, the main process does not join the
// children: the program waits for them at exit.
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

// time.sleep(random.randint(1, 3)), in units of 20 ms
void random_sleep(std::mt19937& gen) {
    std::uniform_int_distribution<int> randint(1, 3);
    std::this_thread::sleep_for(20ms * randint(gen));
}

void consumer(mp::Queue<std::optional<std::string>>& q) {
    std::mt19937 gen(std::random_device{}());
    while (true) {
        std::optional<std::string> res = q.get();
        if (!res) break;  // got the end marker: stop
        random_sleep(gen);
        std::cout << getpid() << " eats " << *res << "\n" << std::flush;
    }
}

void producer(mp::Queue<std::optional<std::string>>& q) {
    std::mt19937 gen(std::random_device{}());
    for (int i = 0; i < 5; ++i) {
        random_sleep(gen);
        std::string res = "bun" + std::to_string(i);
        q.put(res);
        std::cout << getpid() << " produced " << res << "\n" << std::flush;
    }
    q.put(std::nullopt);  // at the very end of its process, the producer puts the end marker
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Queue<std::optional<std::string>> q;
    // The producers: the cooks
    mp::Process p1(producer, q);

    // The consumers: the eaters
    mp::Process c1(consumer, q);

    // Go
    p1.start();
    c1.start();

    std::cout << "main\n" << std::flush;
}
