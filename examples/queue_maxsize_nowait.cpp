// queue_maxsize_nowait — seed 003 (003_c397d4ee5c18e9b7.txt), lines 1339-1407: the Queue methods
// in one process (the method list is at lines 1285-1331). Queue(3) holds at most 3 items: put()
// on a full queue would block until someone takes an item, so put_nowait() is used instead, and
// it raises queue.Full (the item is dropped); full() tells beforehand. get() takes the items out
// first in, first out; get() on an empty queue would block, get_nowait() raises queue.Empty;
// empty() tells beforehand.
//
// The scraper put nearly every line of the first half in a block of its own; joined up they are
// one program. Changes: the seed calls q.get_nowait(3), which raises TypeError (get_nowait takes
// no argument); its bare `except:` catches that, so Python prints the "empty" line for the wrong
// reason. Here get_nowait() is called as intended and raises mp::Empty. The bare `except:`
// clauses catch mp::Full and mp::Empty, the errors they are there for. Printed text in English;
// True/False as Python prints them.
#include <iostream>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Queue<int> q(3);  // a queue that holds at most 3 items
    // put, get, put_nowait, get_nowait, full, empty
    q.put(3);  // add an item to the queue
    q.put(2);
    q.put(1);
    // q.put(4);  // the queue is full: the program would stop here until someone takes an item,
    //            // and if nobody ever does, it stops here forever.
    try {
        q.put_nowait(4);  // does not block on a full queue, but raises queue.Full
    } catch (const mp::Full&) {  // caught: the program goes on, but this item is lost
        std::cout << "the queue is full\n" << std::flush;
    }
    // So before putting, one can look at the queue's state and not put when it is full.
    std::cout << py::repr(q.full()) << "\n" << std::flush;  // full: True, not full: False

    std::cout << q.get() << "\n" << std::flush;  // take an item out
    std::cout << q.get() << "\n" << std::flush;
    std::cout << q.get() << "\n" << std::flush;
    // std::cout << q.get();  // like put: on an empty queue get() blocks
    try {
        q.get_nowait();  // does not block on an empty queue, but raises queue.Empty
    } catch (const mp::Empty&) {  // caught: the program does not block
        std::cout << "the queue is empty\n" << std::flush;
    }
    std::cout << py::repr(q.empty()) << "\n" << std::flush;  // empty
}
