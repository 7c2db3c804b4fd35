// pool_crawler_callback — seed 003 (003_c397d4ee5c18e9b7.txt), lines 2493-2564: a crawler on a
// Pool(3). In a crawler most of the time goes to the network's latency; if each task also
// processed its data, the tasks queued behind it would wait longer for a worker. So the request
// is the task, run asynchronously in the pool, and the data processing is a callback, run in the
// main process (text at line 2493): the workers print "get", the callback prints "parse" with the
// main process's pid and appends one line per page to db.txt. Getting the results at the end is
// not needed (the comment at line 2547): the callback has already handled them.
//
// The seed downloads 5 web pages with requests.get(url); there is no network here, so:
// - requests.get(url) is replaced by fetch(url), a lookup in PAGES, fixed local pages, each with
//   a fixed delay standing in for the network: baidu, github and sina take 0.2 s, python 0.8 s
//   and openstack 1.2 s. The worker that fetched baidu then fetches github and sina while the
//   other two are busy, and the callbacks run in completion order, 0.2 s apart (0.1 s steps
//   would do on an idle machine; 0.2 s leaves a margin on a loaded one).
// - The seed's dict {'url': ..., 'text': ...} is a struct Page (with a cereal serialize member so
//   that it can travel), and get_page returns std::optional<Page>: std::nullopt where Python's
//   get_page returns None (status not 200, which the local pages never have).
// - Added: db.txt is removed first, so that each run starts from an empty file (the seed appends
//   to it on every run), and its content is printed at the end, to show what the callback wrote.
// - The scraper moved everything after the submission loop to column 0; here it is all in main.
//   The seed's unused `import json` is left out.
// - Printed text in English (<进程...> is <process ...>); the results as Python prints them.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;

// The local stand-in for the web: url -> (network delay in seconds, page text).
const std::map<std::string, std::pair<double, std::string>> PAGES = {
    {"https://www.baidu.com", {0.2, "<html>baidu</html>"}},
    {"https://www.python.org", {0.8, "<html>python</html>"}},
    {"https://www.openstack.org", {1.2, "<html>openstack</html>"}},
    {"https://help.github.com/", {0.2, "<html>github</html>"}},
    {"http://www.sina.com.cn/", {0.2, "<html>sina</html>"}},
};

struct Response {
    int status_code;
    std::string text;
};

// Instead of requests.get(url): the local page, after its delay.
Response fetch(const std::string& url) {
    const auto& [delay, text] = PAGES.at(url);
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    return {200, text};
}

// The seed's dict {'url': url, 'text': text}.
struct Page {
    std::string url;
    std::string text;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(url, text);
    }
};

// Python's repr() of the dict: {'url': '...', 'text': '...'} (py::repr of the list of results uses it)
std::string repr(const Page& d) { return py::dict_repr("url", d.url, "text", d.text); }

std::optional<Page> get_page(const std::string& url) {
    std::cout << "<process " << getpid() << "> get " << url << "\n" << std::flush;
    Response response = fetch(url);  // requests.get(url) in the seed
    if (response.status_code == 200) return Page{.url = url, .text = response.text};
    return std::nullopt;
}

void parse_page(const std::optional<Page>& res) {
    std::cout << "<process " << getpid() << "> parse " << res.value().url << "\n" << std::flush;
    std::string parse_res = "url:<" + res.value().url + "> size:[" + std::to_string(res.value().text.size()) + "]\n";
    std::ofstream f("db.txt", std::ios::app);
    f << parse_res;
}

int main(int argc, char** argv) {
    mp::init(argc, argv);
    std::filesystem::remove("db.txt");  // added: start from an empty file

    std::vector<std::string> urls = {
        "https://www.baidu.com",    "https://www.python.org",  "https://www.openstack.org",
        "https://help.github.com/", "http://www.sina.com.cn/",
    };

    mp::Pool p(3);
    std::vector<mp::AsyncResult<std::optional<Page>>> res_l;
    for (const auto& url : urls) {
        auto res = p.apply_async(mp::Callbacks{.callback = parse_page}, get_page, url);
        res_l.push_back(res);
    }

    p.close();
    p.join();
    std::vector<std::optional<Page>> results;  // [res.get() for res in res_l]
    for (auto& res : res_l) results.push_back(res.get());
    std::cout << py::repr(results) << "\n" << std::flush;  // get_page's results: there is really no need to
    // get them, they were already handled by the callback

    // Added: what the callback wrote.
    std::ifstream db("db.txt");
    for (std::string line; std::getline(db, line);) std::cout << line << "\n" << std::flush;
}
