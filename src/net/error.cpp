#include <corio/error.hpp>

namespace corio {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "corio"; }
  std::string message(int c) const override {
    switch (static_cast<Error>(c)) {
      case Error::closed: return "closed";
      case Error::timeout: return "timeout";
      case Error::line_too_long: return "line too long";
      case Error::refused: return "connection refused";
    }
    return "unknown error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category c;
  return c;
}

}  // namespace corio
