// A type_choice over number formats read as a run-time qnas::quantizer.
#pragma once

#include "qnas/formats/quantizer.hpp"
#include "qnas/space/space.hpp"

namespace qnas {

/// The quantizer for the format a candidate chose in decision Name, a type_choice whose
/// alternatives are number formats. One quantizer::of<F> per alternative is instantiated
/// (the dispatch table of visit), so a network built from the candidate needs no per-format code.
template <fixed_string Name, space_type S>
quantizer quantizer_of(const S& s, const candidate& c) {
  return visit<Name>(s, c, [](auto tag) {
    using F = typename decltype(tag)::type;
    static_assert(number_format<F>, "quantizer_of<Name>: every alternative of decision Name must be a number_format");
    return quantizer::of<F>();
  });
}

}  // namespace qnas
