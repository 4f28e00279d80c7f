// A readable per-layer energy table of a model, so nobody has to read types or JSON.
#pragma once

#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "qnas/energy/estimate.hpp"

namespace qnas::energy {

/// Per-layer energies of a model plus its totals (allocates: for reports, not the hot loop;
/// the search loop calls price_model).
struct energy_report {
  std::string table_name;
  std::vector<layer_desc> layers;
  std::vector<layer_energy> energies;
  model_energy totals;
};

/// Prices every layer of a model under cost table T and keeps the details.
template <class T>
energy_report estimate(model_view layers, const energy_options& o = {}) {
  static_assert(check_cost_table<T>());
  energy_report r;
  r.table_name = std::string(T::name);
  r.layers.assign(layers.begin(), layers.end());
  r.energies.reserve(layers.size());
  for (std::size_t i = 0; i < layers.size(); ++i) {
    r.energies.push_back(price_layer<T>(layers[i], o, role_of(i, layers.size())));
    r.totals.accumulate(r.energies.back());
  }
  return r;
}

namespace detail {
inline std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
inline std::string cell(double v, bool counted) { return fmt("%.2f", v) + (counted ? " " : "*"); }
inline std::string pad(std::string s, std::size_t w, bool right = true) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}
}  // namespace detail

/// The report as a fixed-width table (pJ per sample). Components marked * are not counted
/// in the total under the report's accounting.
inline std::string summary(const energy_report& r) {
  using detail::pad;
  std::string s = "energy (" + r.table_name + ", pJ per sample; * = not counted)\n";
  s += pad("layer", 12, false) + pad("kind", 17, false) + pad("MACs", 10) + pad("operator", 17) + pad("acc", 5) +
       pad("inputs", 13) + pad("params", 13) + pad("op", 14) + pad("outputs", 13) + pad("total", 13) + "\n";
  for (std::size_t i = 0; i < r.layers.size(); ++i) {
    const layer_desc& l = r.layers[i];
    const layer_energy& e = r.energies[i];
    const bool mac = l.has_weights();
    s += pad(l.name, 12, false) + pad(to_string(l.kind), 17, false) + pad(std::to_string(e.macs), 10) +
         pad(mac ? to_string(e.mac.kind) : "-", 17) + pad(e.accumulator_bits ? std::to_string(e.accumulator_bits) : "-", 5) +
         pad(detail::cell(e.inputs, e.counts(component::inputs)), 13) +
         pad(detail::cell(e.parameters, e.counts(component::parameters)), 13) +
         pad(detail::cell(e.op, e.counts(component::op)), 14) +
         pad(detail::cell(e.outputs, e.counts(component::outputs)), 13) + pad(detail::fmt("%.2f", e.total()), 13) +
         "\n";
  }
  const model_energy& t = r.totals;
  s += pad("total", 29, false) + pad(std::to_string(t.macs), 10) + pad("", 22) + pad(detail::fmt("%.2f ", t.inputs), 13) +
       pad(detail::fmt("%.2f ", t.parameters), 13) + pad(detail::fmt("%.2f ", t.op), 14) +
       pad(detail::fmt("%.2f ", t.outputs), 13) + pad(detail::fmt("%.2f", t.total_pj), 13) + "\n";
  s += "qtools-style total (2-decimal components, truncated): " + std::to_string(t.qtools_total()) + " pJ\n";
  return s;
}

inline std::ostream& operator<<(std::ostream& os, const energy_report& r) { return os << summary(r); }

}  // namespace qnas::energy
