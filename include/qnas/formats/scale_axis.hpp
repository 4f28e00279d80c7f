// Which values share a scale (per channel, per tensor), and the fixed-point units that data-dependent or learned scales apply to.
#pragma once

#include "qnas/formats/concept.hpp"

namespace qnas {

// ---------------------------------------------------------------------------------------------
// Scale axis: which elements share one scale (docs/formats_scaled.md).
// ---------------------------------------------------------------------------------------------

/// One scale per index of the channel axis (the last axis by default: the output channel of
/// HWIO conv weights and of [in, out] dense weights), reducing over all other axes, as QKeras
/// does for channels_last tensors. A tensor of rank 0 or 1 (a bias) gets one scale.
struct per_channel {
  static constexpr const char* name = "per_channel";
};
/// One scale for the whole tensor.
struct per_tensor {
  static constexpr const char* name = "per_tensor";
};

namespace detail {

// The fixed-point unit formats a scale applies to (scaled, lsq), recognised by what they
// declare (so that a new template parameter of fixed_point does not break the match).
template <class U>
concept scaled_fixed_unit = scalar_format<U> && U::family == format_family::fixed_point && requires {
  { U::keep_negative } -> constant_of<bool>;
  { U::symmetric } -> constant_of<bool>;
  { U::integer_bits } -> constant_of<int>;
  { U::step_exponent } -> constant_of<int>;
  { U::hi_code } -> constant_of<int>;
};
}  // namespace detail

}  // namespace qnas
