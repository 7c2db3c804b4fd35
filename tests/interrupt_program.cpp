// A program busy with everything at once, for tests/test_interrupt.cpp to press Ctrl-C at: a Pool
// in the middle of an imap, a Queue between a producer and a consumer child, a SharedMemory
// segment, a manager. It prints "ready <segment name>" once all of it runs, then waits.
//
//   interrupt_program default   nothing of its own about SIGINT: Ctrl-C ends it
//   interrupt_program handler   catches SIGINT, takes ten more results, stops, and prints
//                               "interrupted: <N> results, <M> lost", exit 0
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "polyproc/polyproc.hpp"

namespace mp = polyproc;
using namespace std::chrono_literals;

namespace {

volatile std::sig_atomic_t interrupted = 0;

int slow_square(int x) {
    std::this_thread::sleep_for(20ms);
    return x * x;
}

void produce(mp::Queue<int>& q) {
    for (int i = 0;; ++i) {
        q.put(i);
        std::this_thread::sleep_for(1ms);
    }
}

void consume(mp::Queue<int>& q) {
    for (;;) (void)q.get();
}

}  // namespace

int main(int argc, char** argv) {
    mp::init(argc, argv);
    const bool handler = argc > 1 && std::strcmp(argv[1], "handler") == 0;
    if (handler) {
        struct sigaction sa {};
        sa.sa_handler = [](int) { interrupted = 1; };
        ::sigemptyset(&sa.sa_mask);
        ::sigaction(SIGINT, &sa, nullptr);
    }
    mp::SharedMemory segment(std::nullopt, true, 4096);
    auto manager = mp::Manager();
    auto shared_list = manager.list();
    shared_list.append(mp::Object(1));
    mp::Queue<int> q;
    mp::Process producer(produce, q), consumer(consume, q);
    producer.start();
    consumer.start();
    mp::Pool pool(2);
    std::vector<int> xs(100000);
    for (int i = 0; i < int(xs.size()); ++i) xs[std::size_t(i)] = i;
    auto results = pool.imap(slow_square, xs, 1);
    (void)results.next(60s);  // one result back: the workers run
    std::printf("ready %s\n", segment.name().c_str());
    std::fflush(stdout);
    // Only the handler mode leaves this loop: ten more results after Ctrl-C, every one of them
    // there (the workers ignore SIGINT: the program decides), then it stops.
    int got = 1, lost = 0;
    for (int after = 0; got < int(xs.size()) && after < 10; ++got) {
        if (interrupted) ++after;
        try {
            (void)results.next(60s);
        } catch (const mp::WorkerLostError&) {
            ++lost;
        }
    }
    pool.terminate();
    producer.terminate();
    consumer.terminate();
    producer.join();
    consumer.join();
    segment.unlink();  // a program that ends on its own cleans up; a killed one leaves it to the tracker
    std::printf("interrupted: %d results, %d lost\n", got, lost);
    return 0;
}
