// queue_put_get_timeout — seed 004 (004_22a7b71a27b014c2.txt), lines 38-59: Queue's put and get
// with their two optional parameters, block and timeout. The text (lines 42-49): with block True
// (the default) and a positive timeout, put waits at most timeout for free space and then raises
// queue.Full; with block False it raises queue.Full at once if the queue is full. Likewise get
// waits at most timeout for an item and then raises queue.Empty; with block False it returns an
// item at once if there is one, else raises queue.Empty at once.
//
// The seed's code (lines 52-59, list numbers kept and indentation lost: as written, a
// SyntaxError) is only the first part below: a child offers "Hello World" and the main process's
// get() waits for it. Everything after it is added, one case per sentence of the text, on a
// queue with room for one item (Queue(1)); the seed has no code for them. Timeouts are 0.2 s; the
// helper children act after 0.1 s. The program prints whether each call waited, and checks
// that a timed-out call waited at least its timeout (an early return would print "too early").
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

void offer(mp::Queue<std::string>& queue) { queue.put("Hello World"); }

// Added helpers, run in children: take an item, or put one, after a short delay.
void take_later(mp::Queue<std::string>& queue) {
    std::this_thread::sleep_for(100ms);
    queue.get();
}
void put_later(mp::Queue<std::string>& queue) {
    std::this_thread::sleep_for(100ms);
    queue.put("late item");
}

// How long a call took, as the program prints it.
std::string waited(Clock::time_point start, std::chrono::milliseconds timeout) {
    const auto elapsed = Clock::now() - start;
    if (timeout == 0ms) return elapsed < 100ms ? "at once" : "after a wait (unexpected)";
    return elapsed >= timeout ? "after waiting the 0.2 s timeout" : "too early";
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    // The seed's program.
    mp::Queue<std::string> q;
    mp::Process p(offer, q);
    p.start();
    std::cout << q.get() << "\n" << std::flush;
    p.join();  // added

    // Added: the cases the text describes.
    mp::Queue<std::string> one(1);
    one.put("first");
    std::cout << "full(): " << (one.full() ? "True" : "False") << "\n" << std::flush;

    auto start = Clock::now();
    try {
        one.put("second", false);
    } catch (const mp::Full&) {
        std::cout << "put(block=False) on a full queue: queue.Full " << waited(start, 0ms) << "\n" << std::flush;
    }

    start = Clock::now();
    try {
        one.put("second", true, 200ms);
    } catch (const mp::Full&) {
        std::cout << "put(block=True, timeout=0.2) on a full queue: queue.Full " << waited(start, 200ms) << "\n"
                  << std::flush;
    }

    mp::Process taker(take_later, one);  // takes "first" after 0.1 s
    taker.start();
    one.put("second", true, 2s);
    std::cout << "put(block=True, timeout=2) on a full queue: done once a child took an item\n" << std::flush;
    taker.join();

    start = Clock::now();
    std::string item = one.get(false);
    std::cout << "get(block=False) with an item there: '" << item << "' " << waited(start, 0ms) << "\n" << std::flush;

    start = Clock::now();
    try {
        one.get(false);
    } catch (const mp::Empty&) {
        std::cout << "get(block=False) on an empty queue: queue.Empty " << waited(start, 0ms) << "\n" << std::flush;
    }

    start = Clock::now();
    try {
        one.get(true, 200ms);
    } catch (const mp::Empty&) {
        std::cout << "get(block=True, timeout=0.2) on an empty queue: queue.Empty " << waited(start, 200ms) << "\n"
                  << std::flush;
    }

    mp::Process putter(put_later, one);  // puts an item after 0.1 s
    putter.start();
    item = one.get(true, 2s);
    std::cout << "get(block=True, timeout=2) on an empty queue: '" << item << "' once a child put it\n" << std::flush;
    putter.join();
}
