// queue_main_sends_none — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1613-1654: the end marker
// need not come from the producer. The main process can put it, but only after the producer has
// finished (text at line 1613): it joins the producer, then puts None. The producer makes two
// buns.
//
// Changes: the seed's sleeps are random.randint(1, 3) seconds for both; here the producer takes
// 10-30 ms per bun and the consumer 100-300 ms per bun (randint(1, 3) times 10 ms and 100 ms), so
// that the output comes in one order: the producer's lines, then the main process's line (it
// waits for the producer only), then the consumer's. Printed text in English, without the colour
// escapes; 包子 (steamed bun) is "bun". An item that may be None is a std::optional<std::string>.
// As in Python, the consumer is not joined: the program waits for it at exit.
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
        if (!res) break;  // got the end marker: stop
        random_sleep(gen, 100ms);
        std::cout << getpid() << " eats " << *res << "\n" << std::flush;
    }
}

void producer(mp::Queue<std::optional<std::string>>& q) {
    std::mt19937 gen(std::random_device{}());
    for (int i = 0; i < 2; ++i) {
        random_sleep(gen, 10ms);
        std::string res = "bun" + std::to_string(i);
        q.put(res);
        std::cout << getpid() << " produced " << res << "\n" << std::flush;
    }
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

    p1.join();            // wait for the producer to finish
    q.put(std::nullopt);  // put the end marker
    std::cout << "main\n" << std::flush;
}
