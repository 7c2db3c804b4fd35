// multi_children_file_append — seed 003 (003_c397d4ee5c18e9b7.txt), lines 522-564: several
// children, joined, share the file system (not memory): they all append to one file, and the main
// process reads the result after joining them.
//
// The seed is broken: the loop fell out of the `if __name__ == '__main__':` block,
// '姑娘%s%i,i)) is an unterminated string (a SyntaxError), and the last print,
// '.....' % (len(all_num)), would raise "TypeError: not all arguments converted". This is the
// intended program: the loop inside main, args=(file, 'Girl%s' % i, i), and the count printed
// after the dots. Printed text is in English. Added (marked below): the file is removed first, so
// that each run starts from an empty file (in the seed it grows from run to run).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;

// Several processes write to one file at the same time.
void func(const std::string& x, const std::string& y, [[maybe_unused]] int i) {
    std::ofstream f(x, std::ios::app | std::ios::ate);  // open(x, 'a', encoding='utf-8')
    std::cout << "current process " << getpid() << " got file cursor position>>" << f.tellp() << "\n" << std::flush;
    f << y;
}

// Several processes create several files at the same time.
// void func(const std::string& x, const std::string& y) {
//     std::ofstream f(x);
//     f << y;
// }

int main(int argc, char** argv) {
    mp::init(argc, argv);
    std::filesystem::remove("can_do_girl_lists.txt");  // added: start from an empty file

    std::vector<mp::Process> p_list;
    for (int i = 0; i < 10; ++i) {
        mp::Process& p = p_list.emplace_back(func, std::string("can_do_girl_lists.txt"), "Girl" + std::to_string(i), i);
        // mp::Process p(func, "can_do_girl_info" + std::to_string(i) + ".txt", "Girl's phone 0000" + std::to_string(i));
        p.start();
    }

    for (auto& ap : p_list) ap.join();
    {
        std::ifstream f("can_do_girl_lists.txt");
        std::stringstream data;
        data << f.rdbuf();
        // Count the entries in the file: each one has a number, so a regex finds them all.
        std::vector<std::string> all_num;
        const std::string text = data.str();
        const std::regex digits("\\d+");
        for (auto it = std::sregex_iterator(text.begin(), text.end(), digits); it != std::sregex_iterator(); ++it)
            all_num.push_back(it->str());
        std::cout << ">>>> " << py::repr(all_num) << " ....." << all_num.size() << "\n" << std::flush;
    }
    std::cout << "It's free~~~~~!\n" << std::flush;
}
