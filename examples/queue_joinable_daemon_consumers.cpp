// queue_joinable_daemon_consumers — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1713-1791: the
// end markers of queue_producer_consumer_none, done by the queue. A JoinableQueue counts the items
// put and not yet finished: a consumer calls task_done() for each item it has processed, and
// join() blocks until that count is zero. Three cooks make ten items each, then wait in q.join()
// until everything on the queue has been eaten. The two eaters loop forever, so they are daemonic:
// once the main process has joined the three cooks, every item has been eaten, nothing is left
// for the eaters, and they end with the main process's code (the comments at lines 1774 and
// 1787-1789). The methods (lines 1721-1733): task_done() raises if called more times than items
// were taken; join() blocks until task_done() has been called for every item.
//
// Changes: the sleeps of random.random() seconds are random 0-20 ms for a cook and 0-100 ms for
// an eater, so that the eaters stay behind the cooks, as with the seed's times on average, and
// the program takes about a second. The scraper split the block after producer(); it is one
// program here. Printed text in English, without the colour escapes: 包子 is "bun", 骨头 "bone",
// 泔水 "slop"; 生产结束 is "finished producing".
#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

// time.sleep(random.random()), scaled to at most `most` seconds
void random_sleep(std::mt19937& gen, double most) {
    std::uniform_real_distribution<double> random(0.0, most);
    std::this_thread::sleep_for(std::chrono::duration<double>(random(gen)));
}

void consumer(mp::JoinableQueue<std::string>& q) {
    std::mt19937 gen(std::random_device{}());
    while (true) {
        std::string res = q.get();
        // time.sleep(random.randint(1, 3))
        random_sleep(gen, 0.1);  // time.sleep(random.random()), at most 0.1 s here
        std::cout << getpid() << " eats " << res << "\n" << std::flush;
        q.task_done();  // tells q.join() that one item has been taken and processed
    }
}

void producer(const std::string& name, mp::JoinableQueue<std::string>& q) {
    std::mt19937 gen(std::random_device{}());
    for (int i = 0; i < 10; ++i) {
        // time.sleep(random.randint(1, 3))
        random_sleep(gen, 0.02);  // time.sleep(random.random()), at most 0.02 s here
        std::string res = name + std::to_string(i);
        q.put(res);
        std::cout << getpid() << " produced " << res << "\n" << std::flush;
    }
    std::cout << name << " finished producing\n" << std::flush;
    q.join();  // done producing: block until every item on the queue has been processed
    std::cout << name << " finished producing~~~~~\n" << std::flush;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::JoinableQueue<std::string> q;
    // The producers: the cooks
    mp::Process p1(producer, std::string("bun"), q);
    mp::Process p2(producer, std::string("bone"), q);
    mp::Process p3(producer, std::string("slop"), q);

    // The consumers: the eaters
    mp::Process c1(consumer, q);
    mp::Process c2(consumer, q);
    // Without daemon the main process could never end. With it, the producers' items must all
    // have been produced and processed before the main process ends: see the joins below.
    c1.set_daemon(true);
    c2.set_daemon(true);

    // Go
    std::vector<mp::Process*> p_l{&p1, &p2, &p3, &c1, &c2};
    for (mp::Process* p : p_l) p->start();

    p1.join();  // the producers' end means that everything they produced has been processed
    p2.join();
    p3.join();
    std::cout << "main\n" << std::flush;

    // main waits ---> p1, p2, p3 wait ---> c1, c2
    // p1, p2 and p3 have ended, so c1 and c2 have surely taken and processed all they sent.
    // c1 and c2 are of no more use and need not keep the main process waiting: they should end
    // with it, which is what daemonic processes do.
}
