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
  // So that ec == std::errc::timed_out (or connection_refused) holds as for system errors.
  std::error_condition default_error_condition(int c) const noexcept override {
    switch (static_cast<Error>(c)) {
      case Error::timeout: return std::errc::timed_out;
      case Error::refused: return std::errc::connection_refused;
      default: return {c, *this};
    }
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category c;
  return c;
}

}  // namespace corio
