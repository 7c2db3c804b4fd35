// ticket_race_no_lock — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1142-1195: buying the last
// ticket without a lock. The file db holds {"count": 1}. Each buyer shows the tickets left, then
// reads the file, waits (network delay), sees a ticket, decrements the count, waits again and
// writes the file back. Every buyer read the count before anyone wrote it, so every buyer is
// told it bought the one ticket: the data is not safe. ticket_lock is the same program with a Lock.
//
// Changes, besides English text without the seed's colour escapes:
// - Ten buyers (the seed starts 3; its comment says "100 concurrent clients").
// - The seed asks you to create db by hand and to put the 1 back after every run; the program
//   writes it first. It is called db_race here (ticket_lock uses db_lock) so that both examples
//   can run at the same time in one directory. json.load and json.dump are two small functions
//   for this one-line file.
// - Added: the sale opens at one moment. The buyers wait at an mp::Event that the main process
//   sets once all ten have started, as a real sale opens at a fixed hour. So the buyers read the
//   file together however slowly the processes start, and the race shows on every run.
// - Added: a buyer told it bought the ticket ticks its own box in an mp::RawArray (no lock
//   needed: no two buyers write the same box). The main process joins the buyers (the seed does
//   not) and prints how many tickets were sold: more than one is the race.
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;
using namespace std::chrono_literals;

const char* const db = "db_race";

// json.load(open('db'))['count'] for the file {"count": N}.
int load_count() {
    std::ifstream f(db);
    std::stringstream text;
    text << f.rdbuf();
    const std::string s = text.str();
    const auto key = s.find("\"count\"");
    const auto colon = key == std::string::npos ? key : s.find(':', key);
    if (colon == std::string::npos) throw std::runtime_error("db is not {\"count\": N}: " + s);
    return std::stoi(s.substr(colon + 1));
}

// json.dump({'count': count}, open('db', 'w'))
void dump_count(int count) { std::ofstream(db, std::ios::trunc) << "{\"count\": " << count << "}"; }

// Show the tickets left.
void search() { std::cout << "tickets left: " << load_count() << "\n" << std::flush; }

// Buy a ticket.
void get(int buyer, mp::RawArray<int>& receipts) {
    int count = load_count();
    // Network delay while reading: the processes take turns, and every one of them gets the
    // dictionary {"count": 1}, i.e. every one of them sees one ticket left.
    std::this_thread::sleep_for(100ms);
    if (count > 0) {
        count -= 1;
        std::this_thread::sleep_for(200ms);  // network delay while writing
        dump_count(count);
        // In the end every buyer is told it got the ticket: that is the problem.
        std::cout << "ticket bought\n" << std::flush;
        receipts[buyer] = 1;  // added
    }
}

void task(int buyer, mp::Event& sale_open, mp::RawArray<int>& receipts) {
    sale_open.wait();  // added
    search();
    get(buyer, receipts);
}

int main(int argc, char** argv) {
    mp::init(argc, argv);
    dump_count(1);  // the file db: {"count": 1}

    mp::Event sale_open;             // added
    mp::RawArray<int> receipts(10);  // added: zero-filled
    std::vector<mp::Process> buyers;
    for (int i = 0; i < 10; ++i) {  // simulate 10 clients buying at once
        mp::Process& p = buyers.emplace_back(task, i, sale_open, receipts);
        p.start();
    }

    // Added: open the sale, wait for the buyers, count the tickets sold.
    sale_open.set();
    for (auto& p : buyers) p.join();
    int sold = 0;
    for (int r : receipts) sold += r;
    std::cout << "tickets sold: " << sold << " (there was 1)\n";
    std::cout << "oversold: " << (sold > 1 ? "True" : "False") << "\n";
    std::cout << "db now holds: {\"count\": " << load_count() << "}\n";
}
