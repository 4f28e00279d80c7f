// onnx/import: bad input (unsupported ops, truncated and oversized tensors, cycles, missing tensors, layouts qnas cannot express) is refused with a message naming what and where.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "qnas/onnx/import.hpp"

namespace fs = std::filesystem;
using namespace qnas;

namespace {

void add_node(onnx::GraphProto& g, const std::string& op, const std::string& name, const std::vector<std::string>& in,
              const std::string& out) {
  onnx::NodeProto* n = g.add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& i : in) n->add_input(i);
  n->add_output(out);
}
onnx::AttributeProto& add_ints(onnx::NodeProto& n, const std::string& name, const std::vector<std::int64_t>& v) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
  return *a;
}
onnx::TensorProto& add_init(onnx::GraphProto& g, const std::string& name, const std::vector<std::int64_t>& dims) {
  onnx::TensorProto* t = g.add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  std::size_t n = 1;
  for (auto d : dims) {
    t->add_dims(d);
    n *= static_cast<std::size_t>(d);
  }
  const std::vector<float> v(n, 0.25f);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), n * sizeof(float)));
  return *t;
}
void value_info(onnx::ValueInfoProto& v, const std::string& name, const std::vector<std::int64_t>& dims) {
  v.set_name(name);
  auto* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (auto d : dims) {
    if (d < 0) t->mutable_shape()->add_dim()->set_dim_param("N");
    else t->mutable_shape()->add_dim()->set_dim_value(d);
  }
}

/// input [N, 2, 6, 6] -> Conv(4 filters, 3x3, pads 1) "conv" -> Relu "relu" -> output "y".
onnx::ModelProto model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  onnx::GraphProto& g = *m.mutable_graph();
  value_info(*g.add_input(), "x", {-1, 2, 6, 6});
  value_info(*g.add_output(), "y", {-1, 4, 6, 6});
  add_init(g, "w", {4, 2, 3, 3});
  add_init(g, "b", {4});
  add_node(g, "Conv", "conv", {"x", "w", "b"}, "c");
  add_ints(*g.mutable_node(0), "pads", {1, 1, 1, 1});
  add_node(g, "Relu", "relu", {"c"}, "y");
  return m;
}

/// The message `f` throws as exception type E ("" when it does not throw).
template <class E, class F>
std::string thrown(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}
/// The message import_onnx_bytes throws for `m` as exception type E ("" when it does not throw).
template <class E>
std::string refusal(const onnx::ModelProto& m) {
  std::string s;
  REQUIRE(m.SerializeToString(&s));
  return thrown<E>([&] { (void)import_onnx_bytes({s.data(), s.size()}, "m"); });
}
const std::string where = "qnas::import_onnx('m'): ";

}  // namespace

TEST_CASE("import_onnx: the test model itself imports") {
  const std::string s = model().SerializeAsString();
  const auto net = import_onnx_bytes({s.data(), s.size()}, "m");
  CHECK(net->input_shape() == image(6, 6, 2));
  CHECK(net->output_shape() == image(6, 6, 4));
}

TEST_CASE("import_onnx: unsupported operators name the op and the node") {
  onnx::ModelProto m = model();
  add_node(*m.mutable_graph(), "LSTM", "lstm_1", {"y"}, "z");
  CHECK(refusal<invalid_argument>(m) == where + "unsupported op 'LSTM' (node 'lstm_1')");
  onnx::ModelProto d = model();
  d.mutable_graph()->mutable_node(1)->set_domain("com.microsoft");
  CHECK(refusal<invalid_argument>(d) == where + "unsupported op 'com.microsoft.Relu' (node 'relu')");
}

TEST_CASE("import_onnx: a tensor larger than the bytes it holds is refused before anything is allocated") {
  onnx::ModelProto m = model();
  onnx::TensorProto& w = *m.mutable_graph()->mutable_initializer(0);
  w.mutable_raw_data()->resize(40);
  CHECK(refusal<io_error>(m) == where + "initializer 'w' declares 72 elements of 4 bytes but holds 40 bytes (truncated or corrupt)");
  w.clear_dims();
  w.add_dims(std::int64_t{1} << 40);
  w.add_dims(std::int64_t{1} << 40);
  CHECK(refusal<io_error>(m) == where + "initializer 'w' declares over 2^60 elements of 4 bytes but holds 40 bytes (truncated or corrupt)");
  w.clear_dims();
  w.add_dims(-3);
  CHECK(refusal<io_error>(m) == where + "initializer 'w' has a negative dimension -3");
}

TEST_CASE("import_onnx: external data and unknown data types are refused") {
  onnx::ModelProto m = model();
  m.mutable_graph()->mutable_initializer(0)->set_data_location(onnx::TensorProto::EXTERNAL);
  CHECK(refusal<invalid_argument>(m) == where + "initializer 'w' stores its data in an external file, which import does not "
                                                "read (save the model with its weights inside)");
  onnx::ModelProto h = model();
  h.mutable_graph()->mutable_initializer(1)->set_data_type(onnx::TensorProto::FLOAT16);
  CHECK(refusal<invalid_argument>(h) == where + "initializer 'b' has data type FLOAT16 (10); import reads FLOAT, DOUBLE, "
                                                "INT64 and INT32 tensors");
  h.mutable_graph()->mutable_initializer(1)->set_data_type(1234);
  CHECK(refusal<invalid_argument>(h) == where + "initializer 'b' has data type unknown (1234); import reads FLOAT, DOUBLE, "
                                                "INT64 and INT32 tensors");
}

TEST_CASE("import_onnx: a cyclic graph and a missing tensor are refused naming the node") {
  onnx::ModelProto m = model();
  onnx::GraphProto& g = *m.mutable_graph();
  g.mutable_node(0)->set_input(0, "y");  // conv reads relu's output, relu reads conv's
  CHECK(refusal<io_error>(m) == where + "the graph has a cycle through node 'conv' (Conv)");
  onnx::ModelProto w = model();
  w.mutable_graph()->mutable_node(0)->set_input(1, "w_missing");
  CHECK(refusal<io_error>(w) == where + "missing initializer/input 'w_missing' of node 'conv' (Conv)");
}

TEST_CASE("import_onnx: bytes that are no ONNX model, a file over the size cap, a missing file") {
  const std::string junk = "\xff\xff\xff\xff this is not a protobuf";
  CHECK(thrown<io_error>([&] { (void)import_onnx_bytes({junk.data(), junk.size()}, "m"); }) ==
        where + "not an ONNX model (the protobuf does not parse: truncated or corrupt)");
  CHECK(thrown<io_error>([&] { (void)import_onnx_bytes({junk.data(), 0}, "m"); }) == where + "the model has no graph");
  const fs::path p = fs::temp_directory_path() / "qnas_test_onnx_import_cap.onnx";
  {
    std::ofstream f(p, std::ios::binary);
    const std::string s = model().SerializeAsString();
    f.write(s.data(), static_cast<std::streamsize>(s.size()));
  }
  onnx_import_options small;
  small.max_file_bytes = 100;
  CHECK(thrown<io_error>([&] { (void)import_onnx(p, small); }) ==
        "qnas::import_onnx('" + p.string() + "'): the file has " + std::to_string(fs::file_size(p)) +
            " bytes, over the limit of 100 (onnx_import_options::max_file_bytes)");
  CHECK_NOTHROW((void)import_onnx(p));
  fs::remove(p);
  CHECK_THROWS_AS(import_onnx(p), io_error);
}

TEST_CASE("import_onnx: shapes and layouts qnas cannot express are refused naming the node") {
  onnx::ModelProto dynamic = model();
  dynamic.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(2)->set_dim_param("H");
  CHECK(refusal<invalid_argument>(dynamic) ==
        where + "the graph input 'x' has a dynamic dimension 2 ('H'); only the batch dimension may be dynamic");

  onnx::ModelProto pads = model();
  pads.mutable_graph()->mutable_node(0)->mutable_attribute(0)->set_ints(0, 0);  // pads [0, 1, 1, 1]
  CHECK(refusal<invalid_argument>(pads) ==
        where + "node 'conv' (Conv): pads [0, 1, 1, 1] on a 6x6 input with a 3x3 window and stride 1 match neither qnas's "
                "valid padding nor its same padding (the extra row/column at the bottom/right)");

  onnx::ModelProto dilated = model();
  add_ints(*dilated.mutable_graph()->mutable_node(0), "dilations", {2, 2});
  CHECK(refusal<invalid_argument>(dilated) == where + "node 'conv' (Conv): dilations must be 1");

  onnx::ModelProto grouped = model();
  onnx::NodeProto& conv = *grouped.mutable_graph()->mutable_node(0);
  onnx::AttributeProto* group = conv.add_attribute();
  group->set_name("group");
  group->set_type(onnx::AttributeProto::INT);
  group->set_i(2);
  grouped.mutable_graph()->mutable_initializer(0)->set_dims(1, 1);
  grouped.mutable_graph()->mutable_initializer(0)->mutable_raw_data()->resize(4 * 1 * 9 * 4);
  CHECK(refusal<invalid_argument>(grouped) ==
        where + "node 'conv' (Conv): group 2 with weight [4, 1, 3, 3] on 2 channels; qnas has one group (conv2d) or one filter "
                "per channel (depthwise_conv2d)");

  onnx::ModelProto old = model();
  old.mutable_opset_import(0)->set_version(11);
  CHECK(refusal<invalid_argument>(old) == where + "the model imports opset 11 of the default domain; import reads opsets 13 to 17");
}

TEST_CASE("import_onnx: branches other than residual adds and swish are refused") {
  // y = Conv(x) + Conv2(x): a projection shortcut, not x + f(x)
  onnx::ModelProto m = model();
  onnx::GraphProto& g = *m.mutable_graph();
  g.mutable_node(1)->set_output(0, "r");
  add_node(g, "Conv", "conv2", {"x", "w", "b"}, "c2");
  add_ints(*g.mutable_node(2), "pads", {1, 1, 1, 1});
  add_node(g, "Add", "add", {"r", "c2"}, "y");
  CHECK(refusal<invalid_argument>(m) ==
        where + "tensor 'x' is read by 2 nodes (node 'conv' (Conv), node 'conv2' (Conv)); import reads chains with residual "
                "adds (x + f(x)) and swish (x * Sigmoid(x))");

  // y = c * c
  onnx::ModelProto sq = model();
  sq.mutable_graph()->mutable_node(1)->set_op_type("Mul");
  sq.mutable_graph()->mutable_node(1)->add_input("c");
  CHECK(refusal<invalid_argument>(sq) == where + "node 'relu' (Mul): import reads Mul only as swish, x * Sigmoid(x)");
}

TEST_CASE("import_onnx: a residual add x + Relu(x) imports; nesting and layouts are bounded") {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  onnx::GraphProto& g = *m.mutable_graph();
  value_info(*g.add_input(), "x", {-1, 3, 4, 4});
  value_info(*g.add_output(), "y", {-1, 3, 4, 4});
  add_node(g, "Relu", "relu", {"x"}, "r");
  add_node(g, "Add", "add", {"r", "x"}, "y");
  const std::string s = m.SerializeAsString();
  const auto net = import_onnx_bytes({s.data(), s.size()}, "m");
  REQUIRE(net->size() == 1);
  CHECK((*net)[0].kind() == "residual");
  onnx_import_options flat_only;
  flat_only.max_nesting = 0;
  CHECK(thrown<invalid_argument>([&] { (void)import_onnx_bytes({s.data(), s.size()}, "m", flat_only); }) ==
        where + "residual blocks nest deeper than 0");

  onnx::ModelProto softmax = model();
  add_node(*softmax.mutable_graph(), "Softmax", "sm", {"y"}, "z");
  softmax.mutable_graph()->mutable_output(0)->set_name("z");
  CHECK(refusal<invalid_argument>(softmax) ==
        where + "node 'sm' (Softmax): needs a flat input [N, F] in qnas's order (softmax over the features)");

  onnx::ModelProto chw = model();  // a flattened NCHW image as the output: CHW order
  add_node(*chw.mutable_graph(), "Flatten", "flatten", {"y"}, "z");
  chw.mutable_graph()->mutable_output(0)->set_name("z");
  CHECK(refusal<invalid_argument>(chw) ==
        where + "the graph output 'z' is a flattened image in CHW order, which a qnas network (HWC order) cannot return");

  onnx::ModelProto unknown = model();
  add_ints(*unknown.mutable_graph()->mutable_node(1), "foo", {1});
  CHECK(refusal<invalid_argument>(unknown) == where + "node 'relu' (Relu): attribute 'foo' is not supported");
}
