// ticket_lock — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1199-1250: buying the last ticket with
// a Lock. As in ticket_race_no_lock, the file db holds {"count": 1} and each buyer shows the
// tickets left, then buys: but now the buying (read, decrement, write) happens under a Lock, so
// the buyers buy one after another. Exactly one is told it bought the ticket; the others are told
// there is none left.
//
// Changes, besides English text without the seed's colour escapes (the same as in
// ticket_race_no_lock):
// - Ten buyers (the seed starts 3; its comment says "100 concurrent clients").
// - The program writes db itself (called db_lock here, so that both examples can run at the same
//   time in one directory). json.load and json.dump are two small functions for this file.
// - Added: the sale opens at one moment (an mp::Event the main process sets once all ten buyers
//   have started), so that the buyers come together, as in ticket_race_no_lock.
// - Added: a buyer told it bought the ticket ticks its own box in an mp::RawArray; the main
//   process joins the buyers (the seed does not) and prints how many tickets were sold: one.
// - The seed's else: branch lost its body to the scraper (print('sorry, ...') ended up at column
//   0 after the code block's end); here the sorry line is back inside the else.
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

const char* const db = "db_lock";

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
    std::this_thread::sleep_for(100ms);  // network delay while reading
    if (count > 0) {
        count -= 1;
        std::this_thread::sleep_for(200ms);  // network delay while writing
        dump_count(count);
        std::cout << "ticket bought\n" << std::flush;
        receipts[buyer] = 1;  // added
    } else {
        std::cout << "sorry, no tickets left!\n" << std::flush;
    }
}

void task(int buyer, mp::Lock& lock, mp::Event& sale_open, mp::RawArray<int>& receipts) {
    sale_open.wait();  // added
    search();
    // Buying is where the data changes, so that is where the lock goes.
    lock.acquire();
    get(buyer, receipts);
    lock.release();
}

int main(int argc, char** argv) {
    mp::init(argc, argv);
    dump_count(1);  // the file db: {"count": 1}

    mp::Lock lock;                   // create a lock
    mp::Event sale_open;             // added
    mp::RawArray<int> receipts(10);  // added: zero-filled
    std::vector<mp::Process> buyers;
    for (int i = 0; i < 10; ++i) {  // simulate 10 clients buying at once
        // The lock is passed to task as an argument.
        mp::Process& p = buyers.emplace_back(task, i, lock, sale_open, receipts);
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
