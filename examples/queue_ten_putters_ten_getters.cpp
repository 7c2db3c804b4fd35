// queue_ten_putters_ten_getters — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1447-1493: ten
// processes each put one message on a Queue(3) (their pid, "(put):" and the time) and ten other
// processes each get one and print it after their own pid and "(get):". The queue holds at most
// 3 messages, so putters wait in put() until getters make room. The text after it (line 1498):
// the queue is process-safe, so each message is taken by exactly one process; what one process
// took, no other process gets.
//
// The scraper split the block after inputQ; joined up it is one program. Changes: no colour
// escapes around the message (\033[32m green); multiprocessing.freeze_support() is left out
// (it matters only for frozen Windows executables). time.asctime() is the local time in
// asctime's format, the same text (e.g. "Mon Nov 23 03:23:43 2026").
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

// time.asctime()
std::string asctime_now() {
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &local);  // asctime's format, no '\n'
    return buf;
}

// The function that puts data on the queue
void inputQ(mp::Queue<std::string>& queue) {
    std::string info = std::to_string(getpid()) + "(put):" + asctime_now();
    queue.put(info);
}

// The function that takes data off the queue
void outputQ(mp::Queue<std::string>& queue) {
    std::string info = queue.get();
    std::cout << getpid() << "(get):" << info << "\n" << std::flush;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    std::vector<mp::Process> record1;  // store input processes
    std::vector<mp::Process> record2;  // store output processes
    mp::Queue<std::string> queue(3);

    // Input processes
    for (int i = 0; i < 10; ++i) {
        mp::Process& process = record1.emplace_back(inputQ, queue);
        process.start();
    }

    // Output processes
    for (int i = 0; i < 10; ++i) {
        mp::Process& process = record2.emplace_back(outputQ, queue);
        process.start();
    }

    for (auto& p : record1) p.join();

    for (auto& p : record2) p.join();
}
