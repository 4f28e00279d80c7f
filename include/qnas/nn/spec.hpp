// Compile-time layer specifications: the concept every layer type of network<...> models.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <type_traits>

#include "qnas/formats/concept.hpp"
#include "qnas/formats/quantizer.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/nn/shape.hpp"

namespace qnas::nn {

/// The "no quantization" format argument: float32 arithmetic, the default of every layer.
struct unquantized {};

template <class F>
concept format_argument = std::same_as<F, unquantized> || number_format<F>;

namespace detail {
template <class F>
quantizer to_quantizer() {
  static_assert(format_argument<F>,
                "qnas::nn: a layer's format argument must be a qnas::number_format or qnas::nn::unquantized");
  if constexpr (std::same_as<F, unquantized>)
    return quantizer{};
  else
    return quantizer::of<F>();
}
template <class F>
constexpr format_info info_of_argument() {
  if constexpr (std::same_as<F, unquantized>)
    return float32_info;
  else
    return info_of<F>();
}
/// Learned quantization steps a layer with weight format W keeps (lsq: one per tensor or per
/// output channel; other formats: none), counted with its parameters.
template <class W>
constexpr std::size_t weight_step_count(std::size_t channels) {
  if constexpr (learned_scale_format<W>)
    return W::per_channel_scales ? channels : 1;
  else
    return 0;
}
template <class W, class B, class A>
layer_formats formats_of() {
  return {to_quantizer<W>(), to_quantizer<B>(), to_quantizer<A>()};
}
}  // namespace detail

/// A compile-time layer specification L (dense<10>, conv2d<16, 3, 2>, relu, ...):
///   L::name()                      short kind name for diagnostics and summaries
///   L::output_shape(in)            constexpr shape inference (meaningful when check passes)
///   L::params(in), L::macs(in)     constexpr counts per sample
///   L::template check<Index, In>() constexpr; static_asserts that In is acceptable (the
///                                  instantiation names the layer index and input shape)
///   L::make(in)                    builds the run-time layer
template <class L>
concept layer_spec = requires(tensor_shape s) {
  { L::name() } -> std::convertible_to<const char*>;
  { L::output_shape(s) } -> std::same_as<tensor_shape>;
  { L::params(s) } -> std::same_as<std::size_t>;
  { L::macs(s) } -> std::same_as<std::size_t>;
  { L::make(s) } -> std::convertible_to<std::unique_ptr<layer>>;
};

/// Wraps any layer spec so that its output activations are quantized with `Output`
/// (QKeras' QActivation): `quantized<relu, fixed_point<8, 3, false>>`.
template <class Layer, class Output>
struct quantized {
  static_assert(format_argument<Output>,
                "qnas::nn::quantized<Layer, Output>: Output must be a qnas::number_format or unquantized");
  static constexpr const char* name() { return Layer::name(); }
  static constexpr tensor_shape output_shape(tensor_shape in) { return Layer::output_shape(in); }
  static constexpr std::size_t params(tensor_shape in) { return Layer::params(in); }
  static constexpr std::size_t macs(tensor_shape in) { return Layer::macs(in); }
  template <std::size_t Index, tensor_shape In>
  static constexpr void check() {
    Layer::template check<Index, In>();
  }
  static std::unique_ptr<layer> make(tensor_shape in) {
    auto l = Layer::make(in);
    l->set_output_quantizer(detail::to_quantizer<Output>());
    return l;
  }
};

}  // namespace qnas::nn
