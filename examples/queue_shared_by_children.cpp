// queue_shared_by_children — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1413-1438: one Queue,
// created in the main process and passed to two children, is shared by all three processes. The
// main process puts "little devil" first; child p puts "Girl, how much?~"; child p2 prints a
// marker and gets the oldest item, "little devil"; a moment later the main process gets the other
// one. The seed's numbered comments (read them in the order 1-9) say why: a Queue created inside
// a child's function (comment 9) would be a different queue, and a Queue created at module level
// (comment 8) would be created again in each child on Windows, where children re-import the
// module.
//
// Changes: time.sleep(1) is 0.5 s here (p2 needs only milliseconds to take its item). Printed text
// in English: the marker 》》》》》》》》 is >>>>>>>>, 小鬼 is "little devil" and 姑娘，多少钱~ is
// "Girl, how much?~". As in Python, p2 is not joined; the program waits for it at exit.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include <polyproc/polyproc.hpp>

namespace mp = polyproc;

// mp::Queue<std::string> q(2);  // 8. a Queue created here would be created again in each child
//                               //    on Windows (spawn re-imports the module)
void f(mp::Queue<std::string>& q) {
    // mp::Queue<std::string> q;  // 9. a new queue made here in the child is not the main process's q:
    //                            //    what is put on it never reaches the main process
    q.put("Girl, how much?~");  // 4. uses the queue passed in by the main process; put adds an item
    // std::cout << q.qsize() << "\n";  // 6. how many items the queue holds now
}

void f2(mp::Queue<std::string>& q) {
    std::cout << ">>>>>>>>\n" << std::flush;
    std::cout << q.get() << "\n" << std::flush;  // 5. take an item
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Queue<std::string> q;  // 1. create a Queue
    q.put("little devil");

    mp::Process p(f, q);    // 2. create a process
    mp::Process p2(f2, q);  // 3. create a process
    p.start();
    p2.start();
    // 7. without this wait the main process runs ahead (and a qsize() in the child would say 1)
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    // std::cout << q.get() << "\n";  // result: little devil
    std::cout << q.get() << "\n" << std::flush;  // result: Girl, how much?~
    p.join();
}
