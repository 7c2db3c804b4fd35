// queue_producer_consumer_stuck — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1523-1552: the
// producer/consumer model over a Queue. The producer (the cook) makes ten buns and puts them on
// the queue; the consumer (the eater) takes them off and eats them; neither waits for the other
// except through the queue. The text after it (lines 1573-1575) names the problem: the main
// process never ends, because once the queue is empty the consumer sits in q.get() forever. The
// fix, an end marker, comes in queue_producer_sends_none.
//
// Changes: as written the program never ends, so here the main process shows the problem and
// then ends it (added, after the seed's last line): it joins the producer, waits until the
// consumer has taken every bun (and 0.2 s more to eat the last one), prints that the queue is
// empty and the consumer still alive, and terminates the consumer, as queue_writer_reader_terminate
// does. The sleeps of random.randint(1, 3) seconds are 20-60 ms (randint(1, 3) times 20 ms).
// Printed text in English, without the colour escapes; 包子 (steamed bun) is "bun".
#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;
using namespace std::chrono_literals;

// time.sleep(random.randint(1, 3)), in units of 20 ms
void random_sleep(std::mt19937& gen) {
    std::uniform_int_distribution<int> randint(1, 3);
    std::this_thread::sleep_for(20ms * randint(gen));
}

void consumer(mp::Queue<std::string>& q) {
    std::mt19937 gen(std::random_device{}());
    while (true) {
        std::string res = q.get();
        random_sleep(gen);
        std::cout << getpid() << " eats " << res << "\n" << std::flush;
    }
}

void producer(mp::Queue<std::string>& q) {
    std::mt19937 gen(std::random_device{}());
    for (int i = 0; i < 10; ++i) {
        random_sleep(gen);
        std::string res = "bun" + std::to_string(i);
        q.put(res);
        std::cout << getpid() << " produced " << res << "\n" << std::flush;
    }
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Queue<std::string> q;
    // The producers: the cooks
    mp::Process p1(producer, q);

    // The consumers: the eaters
    mp::Process c1(consumer, q);

    // Go
    p1.start();
    c1.start();
    std::cout << "main\n" << std::flush;

    // Added: the seed's program would hang here forever. Show why, then end it.
    p1.join();
    while (!q.empty()) std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(200ms);
    std::cout << "all buns produced and eaten; the queue is empty: " << py::repr(q.empty()) << "\n" << std::flush;
    std::cout << "the consumer is still alive, waiting in q.get(): " << py::repr(c1.is_alive()) << "\n" << std::flush;
    c1.terminate();
    c1.join();
    std::cout << "terminated the consumer\n" << std::flush;
}
