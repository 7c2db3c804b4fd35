// pipe_producer_consumer_eof — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1916-1954: proper
// management of pipe ends. The consumer child closes its copy of the sending end; the producer
// (the main process) closes the receiving end, sends 0-9 and closes its sending end. The consumer
// then gets EOFError and stops, and join() returns.
//
// The scraper split the last three statements into separate blocks at column 0 (harmless with
// fork); here they are back in main. Printed text is in English. The Python tuple p = (produce,
// consume) is a tuple of references to the two ends (std::tie), so both processes use their own
// copies of the very same ends; the generator (i for i in range(10)) is std::views::iota(0, 10).
#include <iostream>
#include <ranges>
#include <string>
#include <tuple>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

using Ends = std::tuple<mp::Connection&, mp::Connection&>;

void consumer(Ends p, const std::string& name) {
    auto [produce, consume] = p;
    produce.close();
    while (true) {
        try {
            int baozi = consume.recv<int>();
            std::cout << name << " received bun:" << baozi << "\n" << std::flush;
        } catch (const mp::EOFError&) {
            break;
        }
    }
}

void producer(std::ranges::input_range auto seq, Ends p) {
    auto [produce, consume] = p;
    consume.close();
    for (int i : seq) produce.send(i);
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    auto [produce, consume] = mp::Pipe();

    mp::Process c1(consumer, std::tie(produce, consume), "c1");
    c1.start();

    auto seq = std::views::iota(0, 10);
    producer(seq, std::tie(produce, consume));

    produce.close();
    consume.close();
    c1.join();
    std::cout << "main process\n" << std::flush;
}
