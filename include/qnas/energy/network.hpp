// A priced network: energy::layer_desc values in execution order with the storage of their names.
//
// The energy model prices layer_desc values; a network of them is a model_view. network_desc
// owns such a list (and the names its layer_desc::name pointers refer to), as built by the
// nn -> energy bridge (qnas/nn/energy.hpp: nn::describe_network), which follows qtools' rules
// to give every tensor a type. This header knows nothing of nn: energy sits below it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "qnas/energy/estimate.hpp"
#include "qnas/energy/layer.hpp"

namespace qnas::energy {

/// A priced view of a network: energy::layer_desc values in execution order, with the storage
/// of their names (layer_desc::name is a plain pointer). Copies share the immutable names.
class network_desc {
 public:
  network_desc() = default;
  network_desc(std::vector<layer_desc> layers, std::shared_ptr<const std::vector<std::string>> names)
      : layers_(std::move(layers)), names_(std::move(names)) {}

  [[nodiscard]] const std::vector<layer_desc>& layers() const noexcept { return layers_; }
  [[nodiscard]] model_view view() const noexcept { return {layers_.data(), layers_.size()}; }
  operator model_view() const noexcept { return view(); }  // NOLINT: a network is a model
  [[nodiscard]] std::size_t size() const noexcept { return layers_.size(); }
  const layer_desc& operator[](std::size_t i) const { return layers_.at(i); }

 private:
  std::vector<layer_desc> layers_;
  std::shared_ptr<const std::vector<std::string>> names_;
};

/// A fixed-point accumulator of `bits` bits (signed, integer), the format a conv/dense output
/// has before an activation converts it.
constexpr format_info accumulator_format(int bits) noexcept {
  format_info f;
  f.label = "accumulator";
  f.family = format_family::fixed_point;
  f.tuple = {1, 0, bits - 1};
  f.bits = bits;
  f.block_size = 1;
  f.scale_bits = 0;
  double m = 1;
  for (int i = 1; i < bits; ++i) m *= 2;
  f.max_value = m - 1;
  f.min_value = -m;
  f.has_zero = true;
  return f;
}

}  // namespace qnas::energy
