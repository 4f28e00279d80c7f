// network<Input, Layers...>: a network as a type, with shapes, parameters and MACs checked and
// counted at compile time; it builds and runs the run-time `sequential`.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <ostream>
#include <random>
#include <type_traits>
#include <utility>

#include "qnas/nn/residual.hpp"
#include "qnas/nn/sequential.hpp"
#include "qnas/nn/spec.hpp"

namespace qnas::nn {

/// The input of a network: `input<28, 28, 1>` (an image) or `input<784>` (a feature vector).
template <std::size_t... Dims>
struct input {
  static_assert(sizeof...(Dims) == 1 || sizeof...(Dims) == 3,
                "qnas::nn::input<Dims...>: give <H, W, C> for images or <N> for feature vectors");
  static_assert(((Dims > 0) && ...), "qnas::nn::input<Dims...>: every dimension must be > 0");
  static constexpr tensor_shape shape = [] {
    constexpr std::array<std::size_t, sizeof...(Dims)> d{Dims...};
    if constexpr (sizeof...(Dims) == 1)
      return flat(d[0]);
    else
      return image(d[0], d[1], d[2]);
  }();
};

/// N copies of a sequence of layers, spliced into the enclosing pack:
/// `network<input<32,32,3>, repeat<3, conv2d<32, 3>, relu>, ...>`.
template <std::size_t N, class... Layers>
struct repeat {
  static_assert(N > 0, "qnas::nn::repeat<N, Layers...>: N must be > 0");
  static_assert(sizeof...(Layers) > 0, "qnas::nn::repeat<N, Layers...>: give at least one layer");
};

namespace detail {
template <class... Ts>
struct type_list {};

template <class A, class B>
struct concat;
template <class... A, class... B>
struct concat<type_list<A...>, type_list<B...>> {
  using type = type_list<A..., B...>;
};

template <std::size_t N, class List>
struct repeat_list {
  using type = typename concat<List, typename repeat_list<N - 1, List>::type>::type;
};
template <class List>
struct repeat_list<0, List> {
  using type = type_list<>;
};

/// Flattens repeat<...> into a plain list of layer specs.
template <class... Ls>
struct expand;
template <>
struct expand<> {
  using type = type_list<>;
};
template <class L, class... Rest>
struct expand<L, Rest...> {
  using type = typename concat<type_list<L>, typename expand<Rest...>::type>::type;
};
template <std::size_t N, class... Inner, class... Rest>
struct expand<repeat<N, Inner...>, Rest...> {
  using type = typename concat<typename repeat_list<N, typename expand<Inner...>::type>::type,
                               typename expand<Rest...>::type>::type;
};

template <class List>
struct chain;
/// Shape inference, counts and checks over a flat list of layer specs.
template <class... Ls>
struct chain<type_list<Ls...>> {
  static constexpr std::size_t size = sizeof...(Ls);

  static constexpr std::array<tensor_shape, size + 1> shapes(tensor_shape in) {
    std::array<tensor_shape, size + 1> s{};
    s[0] = in;
    std::size_t i = 0;
    ((s[i + 1] = Ls::output_shape(s[i]), ++i), ...);
    return s;
  }
  static constexpr std::size_t params(tensor_shape in) {
    const auto s = shapes(in);
    std::size_t i = 0, total = 0;
    ((total += Ls::params(s[i]), ++i), ...);
    return total;
  }
  static constexpr std::size_t macs(tensor_shape in) {
    const auto s = shapes(in);
    std::size_t i = 0, total = 0;
    ((total += Ls::macs(s[i]), ++i), ...);
    return total;
  }
  /// Runs every layer's check with its index and input shape as template arguments, so a
  /// failing static_assert is reported "in instantiation of ... [Index = 3, In = {7, 7, 32, 3}]".
  template <tensor_shape In>
  static constexpr bool check() {
    constexpr auto s = shapes(In);
    [&]<std::size_t... I>(std::index_sequence<I...>) { (Ls::template check<I, s[I]>(), ...); }
    (std::make_index_sequence<size>{});
    return true;
  }
  static void build(sequential& net) { (net.add(Ls::make(net.output_shape())), ...); }
};
}  // namespace detail

/// y = x + f(x) where f is the block `Layers...` (repeat<> allowed inside). The block must map
/// its input shape to itself (checked at compile time).
template <class... Layers>
struct residual {
  using body = detail::chain<typename detail::expand<Layers...>::type>;
  static constexpr const char* name() { return "residual"; }
  static constexpr tensor_shape output_shape(tensor_shape in) { return in; }
  static constexpr std::size_t params(tensor_shape in) { return body::params(in); }
  static constexpr std::size_t macs(tensor_shape in) { return body::macs(in); }
  template <std::size_t Index, tensor_shape In>
  static constexpr void check() {
    static_assert(body::template check<In>());
    static_assert(body::shapes(In)[body::size] == In,
                  "qnas::nn::residual<Layers...>: the block's output shape must equal its input shape (see the "
                  "layer Index and input shape In in this instantiation)");
  }
  static std::unique_ptr<layer> make(tensor_shape in) {
    auto s = std::make_unique<sequential>(in);
    body::build(*s);
    return std::make_unique<residual_layer>(std::move(s));
  }
};

/// A network as a type: `network<input<28, 28, 1>, conv2d<16, 3, 2>, relu, flatten, dense<10>>`.
/// Shapes are inferred and checked at compile time (a mismatch names the layer, its index and
/// the input shape); `output_shape`, `param_count` and `mac_count` are constexpr. An object
/// owns the run-time `sequential` it builds (same layer code as networks built at run time).
template <class Input, class... Layers>
class network {
  using list = typename detail::expand<Layers...>::type;
  using body = detail::chain<list>;
  static_assert(sizeof...(Layers) > 0, "qnas::nn::network<Input, Layers...>: give at least one layer");
  static_assert(body::template check<Input::shape>());

 public:
  static constexpr tensor_shape input_shape = Input::shape;
  static constexpr std::array<tensor_shape, body::size + 1> shapes = body::shapes(Input::shape);
  static constexpr tensor_shape output_shape = shapes[body::size];
  static constexpr std::size_t layer_count = body::size;
  static constexpr std::size_t param_count = body::params(Input::shape);
  static constexpr std::size_t mac_count = body::macs(Input::shape);

  /// Builds the layers and draws initial parameters from `seed`.
  explicit network(std::uint64_t seed = 0)
      : net_(std::make_unique<sequential>(Input::shape)), engine_(std::make_unique<quantizer::engine_type>(seed)) {
    body::build(*net_);
    net_->set_engine(engine_.get());
    std::mt19937_64 init(seed);
    net_->initialize(init);
  }

  const xt::xarray<float>& forward(const xt::xarray<float>& x, bool training = false) {
    return net_->forward(x, training);
  }
  /// Deleted for the same reason as layer::forward(xarray&&): the input must outlive backward.
  const xt::xarray<float>& forward(xt::xarray<float>&&, bool = false) = delete;
  const xt::xarray<float>& backward(const xt::xarray<float>& dy, bool need_input_grad = false) {
    return net_->backward(dy, need_input_grad);
  }
  std::vector<parameter*> parameters() { return net_->parameters(); }
  void zero_grad() { net_->zero_grad(); }
  /// The run-time network (for folding, inspection, or code that handles any network).
  sequential& layers() noexcept { return *net_; }
  quantizer::engine_type& engine() noexcept { return *engine_; }

  friend std::ostream& operator<<(std::ostream& os, network& n) {
    print_summary(os, *n.net_);
    return os;
  }

 private:
  std::unique_ptr<sequential> net_;
  // Layers hold a pointer to the engine: on the heap, so moving the network keeps it valid.
  std::unique_ptr<quantizer::engine_type> engine_;
};

}  // namespace qnas::nn
