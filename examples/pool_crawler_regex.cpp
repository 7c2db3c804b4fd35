// pool_crawler_regex — seed 003 (003_c397d4ee5c18e9b7.txt), lines 2568-2616: a crawler whose
// callback parses the page. The task (in a worker) fetches the Maoyan film chart
// http://maoyan.com/board/7 and returns (html, pattern); the callback parse_page (in the main
// process) finds every film with the regular expression and prints one dict per film: index,
// title, actors, release date, score. The main process waits with get() on each result.
//
// Changes:
// - There is no network here: requests.get(url) is replaced by fetch(url), which returns a local
//   synthetic page in the chart's layout (PAGE below: two films, each <dd> spread over many lines,
//   as the real page serves it).
// - As written the pattern cannot work, even with a network: it is compiled without re.S, so `.`
//   does not cross the newlines inside a <dd> and nothing is found; and it has 5 groups while the
//   code reads item[5] (an IndexError in the callback). The evident pattern, used here, matches
//   across newlines (std::regex has no re.S: [\s\S] stands for `.`) and has a sixth group for the
//   score's fraction, since the page writes <i class="integer">9.</i><i class="fraction">5</i>:
//   ...integer.*?>(.*?)<.*?fraction.*?>(.*?)<.*?</dd>.
// - A compiled pattern cannot be sent to a worker (Python pickles it as its source and compiles it
//   again on the other side); here the pattern travels as its source string and parse_page
//   compiles it. get_page returns std::optional<std::pair<...>>: std::nullopt where Python's
//   returns None (status not 200, which the local page never has).
// - item[2].strip()[3:] and item[3][5:] cut off the labels 主演： ("starring:") and 上映时间：
//   ("release date:") by counting characters; on UTF-8 bytes that would cut inside a character,
//   so the port removes the labels themselves. The data stays Chinese (it is page content, not
//   program text); the dicts are printed as Python prints them.
// - The scraper moved the final loop to column 0; here it is all in main. The seed's unused
//   imports (time, random) are left out. The pool is never closed, as in the seed; the Pool's
//   destructor terminates the workers at the end of main.
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <polyproc/polyproc.hpp>

#include "python_repr.hpp"

namespace mp = polyproc;

// The local stand-in for http://maoyan.com/board/7 (synthetic data in the chart's layout).
const char* const PAGE = R"(<dl class="board-wrapper">
<dd>
                        <i class="board-index board-index-1">1</i>
    <a href="/films/1203" title="霸王别姬" class="image-link" data-act="boarditem-click" data-val="{movieId:1203}">
    </a>
    <div class="board-item-main">
      <div class="board-item-content">
              <div class="movie-item-info">
        <p class="name"><a href="/films/1203" title="霸王别姬" data-act="boarditem-click" data-val="{movieId:1203}">霸王别姬</a></p>
        <p class="star">
                主演：张国荣,张丰毅,巩俐
        </p>
<p class="releasetime">上映时间：1993-07-26</p>    </div>
    <div class="movie-item-number score-num">
<p class="score"><i class="integer">9.</i><i class="fraction">5</i></p>
    </div>
      </div>
    </div>
                </dd>
<dd>
                        <i class="board-index board-index-2">2</i>
    <a href="/films/1297" title="肖申克的救赎" class="image-link" data-act="boarditem-click" data-val="{movieId:1297}">
    </a>
    <div class="board-item-main">
      <div class="board-item-content">
              <div class="movie-item-info">
        <p class="name"><a href="/films/1297" title="肖申克的救赎" data-act="boarditem-click" data-val="{movieId:1297}">肖申克的救赎</a></p>
        <p class="star">
                主演：蒂姆·罗宾斯,摩根·弗里曼,鲍勃·冈顿
        </p>
<p class="releasetime">上映时间：1994-09-10(加拿大)</p>    </div>
    <div class="movie-item-number score-num">
<p class="score"><i class="integer">9.</i><i class="fraction">6</i></p>
    </div>
      </div>
    </div>
                </dd>
</dl>
)";

struct Response {
    int status_code;
    std::string text;
};

// Instead of requests.get(url): the local page.
Response fetch(const std::string& /*url*/) { return {200, PAGE}; }

std::optional<std::pair<std::string, std::string>> get_page(const std::string& url, const std::string& pattern) {
    Response response = fetch(url);  // requests.get(url) in the seed
    if (response.status_code == 200) return std::pair{response.text, pattern};
    return std::nullopt;
}

// str.strip()
std::string strip(const std::string& s) {
    const char* space = " \t\n\r\f\v";
    const auto first = s.find_first_not_of(space);
    if (first == std::string::npos) return "";
    return s.substr(first, s.find_last_not_of(space) - first + 1);
}

// Instead of s[n:], which cuts off a label n characters long: s without `label` at its start.
std::string after(const std::string& s, const std::string& label) {
    return s.starts_with(label) ? s.substr(label.size()) : s;
}

// The seed's dict.
struct Film {
    std::string index, title, actor, time, score;
};

// Python's repr() of the dict: {'index': '1', 'title': '...', ...}
std::string repr(const Film& d) {
    return py::dict_repr("index", d.index, "title", d.title, "actor", d.actor, "time", d.time, "score", d.score);
}

void parse_page(const std::optional<std::pair<std::string, std::string>>& info) {
    const auto& [page_content, pattern] = info.value();
    const std::regex re(pattern);
    for (auto it = std::sregex_iterator(page_content.begin(), page_content.end(), re); it != std::sregex_iterator();
         ++it) {  // re.findall(pattern, page_content)
        const std::smatch& item = *it;  // item[1] is Python's item[0], and so on
        Film dic{
            .index = item[1],
            .title = item[2],
            .actor = after(strip(item[3]), "主演："),  // item[2].strip()[3:]
            .time = after(item[4], "上映时间："),      // item[3][5:]
            .score = item[5].str() + item[6].str(),

        };
        std::cout << repr(dic) << "\n" << std::flush;
    }
}

int main(int argc, char** argv) {
    mp::init(argc, argv);

    // The seed's pattern1 with re.S and a sixth group (see above); R"~(...)~" is Python's r'...'.
    const std::string pattern1 =
        R"~(<dd>[\s\S]*?board-index[\s\S]*?>(\d+)<[\s\S]*?title="([\s\S]*?)"[\s\S]*?star[\s\S]*?>([\s\S]*?)<)~"
        R"~([\s\S]*?releasetime[\s\S]*?>([\s\S]*?)<[\s\S]*?integer[\s\S]*?>([\s\S]*?)<)~"
        R"~([\s\S]*?fraction[\s\S]*?>([\s\S]*?)<[\s\S]*?</dd>)~";

    std::map<std::string, std::string> url_dic = {
        {"http://maoyan.com/board/7", pattern1},
    };

    mp::Pool p;
    std::vector<mp::AsyncResult<std::optional<std::pair<std::string, std::string>>>> res_l;
    for (const auto& [url, pattern] : url_dic) {
        auto res = p.apply_async(mp::Callbacks{.callback = parse_page}, get_page, url, pattern);
        res_l.push_back(res);
    }

    for (auto& i : res_l) i.get();

    // res = requests.get('http://maoyan.com/board/7')
    // print(re.findall(pattern, res.text))
}
