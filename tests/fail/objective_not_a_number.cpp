// expect-error: qnas: an objective needs `double operator\(\)\(const qnas::search::metrics&\) const`
// expect-error-is-first
// An objective that returns a label instead of a reward: run_search names the rule.
#include <string>

#include "qnas/search/random_search.hpp"
#include "qnas/search/runner.hpp"

struct label_objective {
  std::string operator()(const qnas::search::metrics& m) const { return m.at("accuracy") > 0.5 ? "good" : "bad"; }
};

int main() {
  qnas::space_description space({{"d", qnas::decision_kind::categorical, 2, {}}});
  qnas::search::random_search strategy(space, 1);
  auto eval = [](const qnas::candidate&) { return qnas::search::metrics{{"accuracy", 1.0}}; };
  const auto r = qnas::search::run_search(strategy, eval, label_objective{}, {});
  return static_cast<int>(r.history.size());
}
