// expect-error: qnas: an evaluator needs `qnas::search::metrics operator\(\)\(const qnas::candidate&
// expect-error-is-first
// An evaluator whose call operator is not const (the runner calls it from several threads):
// the runner class names the rule.
#include <string>

#include "qnas/search/random_search.hpp"
#include "qnas/search/runner.hpp"

struct counting_evaluator {
  int calls = 0;
  qnas::search::metrics operator()(const qnas::candidate&) { return {{"accuracy", 1.0 / ++calls}}; }
};

int main() {
  qnas::space_description space({{"d", qnas::decision_kind::categorical, 2, {}}});
  qnas::search::random_search strategy(space, 1);
  qnas::search::runner r(strategy, counting_evaluator{}, qnas::search::maximize_metric{}, {});
  return static_cast<int>(r.run().history.size());
}
