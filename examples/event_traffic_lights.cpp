// event_traffic_lights — seed 003 (003_c397d4ee5c18e9b7.txt), lines 2100-2155: an Event as a
// traffic light. The flag is the light: clear is red, set is green. Ten car processes wait for
// green (e.wait()); a light process switches it every `interval` (set, clear, set, ...). All the
// cars arrive before the light process starts, so all of them stop at red, see green together
// and drive off.
//
// Changes, so that the program ends and takes about 2 s:
// - Shorter times: the light switches every 0.8 s instead of 5 s, a car drives 0.2-0.4 s after
//   seeing green (random.randint(2, 4) tenths of a second instead of seconds) and the cars come
//   0.025-0.075 s apart (the seed's time.sleep(random.random(1, 3)) raises TypeError; the evident
//   intent is random.uniform(1, 3) seconds). Every car still drives off during the first green,
//   as it would with the seed's times (2-4 s of a 5 s green).
// - The seed's light process runs forever, so its program never ends. Here it is daemonic, and
//   the main process joins the cars (added): the light is switched off when the main process's
//   code ends, once every car has driven off.
// - Printed text in English, without the colour escapes. The seed's commented-out police car is
//   left out.
#include <chrono>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;
using namespace std::chrono_literals;

void car(mp::Event& e, int n) {
    std::mt19937 gen(std::random_device{}());
    std::uniform_int_distribution<int> randint(2, 4);
    while (true) {
        if (!e.is_set()) {  // at first is_set() is False: the light is red
            std::cout << "red light, car" << n << " waits\n" << std::flush;
            e.wait();  // blocks until is_set() is True: the light turns green
            std::cout << "car" << n << " sees the green light\n" << std::flush;
            std::this_thread::sleep_for(100ms * randint(gen));
        }
        if (!e.is_set())  // red again: back to the top of the loop
            continue;
        std::cout << "the car drove off, car " << n << "\n" << std::flush;
        break;
    }
}

void traffic_lights(mp::Event& e, std::chrono::milliseconds interval) {
    while (true) {
        std::this_thread::sleep_for(interval);
        if (e.is_set()) {
            std::cout << "##### " << py::repr(e.is_set()) << "\n" << std::flush;
            e.clear();  // is_set() becomes False
        } else {
            e.set();  // is_set() becomes True
            std::cout << "***** " << py::repr(e.is_set()) << "\n" << std::flush;
        }
    }
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    mp::Event e;
    std::mt19937 gen(std::random_device{}());
    std::uniform_real_distribution<double> arrival(0.025, 0.075);
    std::vector<mp::Process> cars;
    for (int i = 0; i < 10; ++i) {
        mp::Process& p = cars.emplace_back(car, e, i);  // 10 processes for 10 cars
        std::this_thread::sleep_for(std::chrono::duration<double>(arrival(gen)));  // cars do not all come at once
        p.start();
    }

    // The light is a process of its own: it switches by its own rhythm, wherever the cars are.
    mp::Process t(traffic_lights, e, 800ms);
    t.set_daemon(true);  // changed: ends with the main process's code
    t.start();

    std::cout << "ready~~~~go!!!\n" << std::flush;
    for (auto& p : cars) p.join();  // added
}
