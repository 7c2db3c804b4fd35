// queue_writer_reader_terminate — seed 000 (000_0c14cfd96ef94e62.txt), lines 96-135: the main
// process creates a Queue and two children, a writer that puts A, B and C, and a reader that gets
// and prints whatever arrives. The reader loops forever, so it cannot be joined: the main process
// joins the writer, then ends the reader with terminate().
//
// The seed lost its indentation (as written, an IndentationError); this is the evident program.
// Change: the writer's time.sleep(random.random()) (0-1 s) is a random 0.1-0.3 s here, never close
// to 0, so that the reader prints each Get line before the writer's next Put line and before the
// terminate(), as in the tutorial's output. q.get(True) is q.get(true): block until an item comes.
// Every line is flushed as it is printed: a terminated process never flushes its buffers (with
// Python 2 and stdout to a pipe, all the reader's lines are lost).
#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

// The writer process runs this (Python's write(); renamed, POSIX has a write() already):
void writer(mp::Queue<std::string>& q) {
    std::mt19937 gen(std::random_device{}());
    std::uniform_real_distribution<double> random(0.1, 0.3);  // random.random(), see above
    for (std::string value : {"A", "B", "C"}) {
        std::cout << "Put " << value << " to queue...\n" << std::flush;
        q.put(value);
        std::this_thread::sleep_for(std::chrono::duration<double>(random(gen)));
    }
}

// The reader process runs this (Python's read()):
void reader(mp::Queue<std::string>& q) {
    while (true) {
        std::string value = q.get(true);
        std::cout << "Get " << value << " from queue.\n" << std::flush;
    }
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    // The parent creates the Queue and passes it to each child:
    mp::Queue<std::string> q;
    mp::Process pw(writer, q);
    mp::Process pr(reader, q);
    // Start the writer pw:
    pw.start();
    // Start the reader pr:
    pr.start();
    // Wait for pw to end:
    pw.join();
    // pr loops forever and cannot be waited for: it can only be ended by force:
    pr.terminate();
}
