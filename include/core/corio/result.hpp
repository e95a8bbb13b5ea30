// Result<T>: what an operation that yields a value returns, without exceptions. `value` is
// meaningful only when `error` is empty; structured bindings read both: auto [ec, n] = ...
#pragma once
#include <system_error>

namespace corio {

template <class T>
struct Result {
  std::error_code error;
  T value{};

  explicit operator bool() const noexcept { return !error; }
};

}  // namespace corio
