// Fashion-MNIST: where its files are found (one documented rule) and the two sets loaded.
#pragma once

#include <array>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/dataset.hpp"
#include "qnas/data/idx.hpp"

namespace qnas::data {

/// Where Debian's `dataset-fashion-mnist` package installs the four IDX files (gzip).
inline constexpr std::string_view fashion_mnist_debian_folder = "/usr/share/datasets/fashion-mnist";

/// The command that installs the data set on Debian 12 or later, also on a fresh image whose
/// package lists are still empty.
inline constexpr std::string_view fashion_mnist_install_command =
    "sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist";

/// The names of the ten Fashion-MNIST classes, by label.
inline constexpr std::array<std::string_view, 10> fashion_mnist_classes = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

/// Thrown when no folder the rule allows holds the data set: the message says where qnas looked
/// and gives the command that installs it. Programs that treat absent data as "skipped" catch
/// this type; every other `io_error` (a truncated or malformed file) is a failure.
class data_missing : public io_error {
  using io_error::io_error;
};

/// A data folder and which part of the rule chose it.
struct data_location {
  std::filesystem::path folder;
  std::string chosen_by;  ///< "--data", "$QNAS_DATA" or "the Debian package"
};

/// Whether `folder` holds the four MNIST-layout files (each plain or .gz).
[[nodiscard]] inline bool has_mnist_layout(const std::filesystem::path& folder) {
  std::error_code ec;
  for (const char* stem : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"})
    if (!std::filesystem::exists(folder / stem, ec) && !std::filesystem::exists(folder / (std::string(stem) + ".gz"), ec))
      return false;
  return true;
}

/// The Fashion-MNIST folder, by one rule: `given` (a program's --data DIR) when not empty, else
/// $QNAS_DATA when set and not empty, else the Debian package's folder. The first that applies is
/// the answer, and it must hold the four files: a --data or $QNAS_DATA that does not is an error
/// (never a silent fall-back to another copy). Throws `data_missing` naming the folder, who chose
/// it and the install command.
[[nodiscard]] inline data_location locate_fashion_mnist(const std::filesystem::path& given = {}) {
  data_location where;
  if (!given.empty()) {
    where = {given, "--data"};
  } else if (const char* env = std::getenv("QNAS_DATA"); env != nullptr && *env != '\0') {
    where = {env, "$QNAS_DATA"};
  } else {
    where = {std::filesystem::path(fashion_mnist_debian_folder), "the Debian package"};
  }
  if (!has_mnist_layout(where.folder))
    throw data_missing(where.folder.string(),
                       qnas::detail::cat("Fashion-MNIST not found (folder chosen by ", where.chosen_by,
                                         "; it needs train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                                         "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each plain or .gz). "
                                         "Install it with: ",
                                         fashion_mnist_install_command,
                                         " (or pass --data DIR / set QNAS_DATA to a folder that holds it)"));
  return where;
}

/// Fashion-MNIST's two sets: 60,000 training and 10,000 test images, 28x28x1, 10 classes.
struct train_test {
  dataset train;
  dataset test;
};

/// Loads both sets from `folder` (see locate_fashion_mnist). Throws `io_error` naming the file
/// when one is missing, truncated or malformed.
[[nodiscard]] inline train_test load_fashion_mnist(const std::filesystem::path& folder) {
  return {load_mnist_train(folder), load_mnist_test(folder)};
}

}  // namespace qnas::data
