// corio's own error conditions, as std::error_code. Their messages are LuaSocket's words,
// so the Lua face can pass them on unchanged.
#pragma once
#include <system_error>

namespace corio {

enum class Error {
  closed = 1,     // the socket was closed (locally, or by the peer for a read)
  timeout,        // the operation's timeout passed
  line_too_long,  // a line (or "*a" read) exceeded the socket's limit
  refused,        // the peer refused the connection
};

const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(Error e) noexcept { return {static_cast<int>(e), error_category()}; }

}  // namespace corio

template <>
struct std::is_error_code_enum<corio::Error> : std::true_type {};
