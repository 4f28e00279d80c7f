// expect-error: qnas: a search strategy needs `void tell\(const qnas::candidate& c, double reward\)`
// expect-error-is-first
// A strategy without tell(): run_search names the missing member, not "no matching function".
#include <string>

#include "qnas/search/runner.hpp"

struct no_tell {
  qnas::space_description s{{{"d", qnas::decision_kind::categorical, 2, {}}}};
  qnas::candidate ask() { return qnas::candidate({0}); }
  nlohmann::json save() const { return {}; }
  void load(const nlohmann::json&) {}
  std::string name() const { return "no_tell"; }
  const qnas::space_description& space() const { return s; }
  // missing: void tell(const qnas::candidate&, double)
};

int main() {
  no_tell strategy;
  auto eval = [](const qnas::candidate&) { return qnas::search::metrics{{"accuracy", 1.0}}; };
  const auto r = qnas::search::run_search(strategy, eval, qnas::search::maximize_metric{}, {});
  return static_cast<int>(r.history.size());
}
