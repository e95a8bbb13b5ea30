// ReadRule: what a buffered read waits for, the rules every face shares. An IoOp steps it on
// its socket: done when it is met, with the result's length in `take` and the bytes to
// consume in `skip` (a line's "\n" too); done with an error in ec otherwise, input() keeping
// what came (the face decides what becomes of it: a partial result, or bytes left for the
// next read); wait or throttled meanwhile. Whatever the segmentation, the same bytes give
// the same outcome.
#pragma once
#include <corio/socket.hpp>

#include <cstddef>

namespace corio {

struct ReadRule {
  enum class Kind {
    exactly,    // count bytes
    line,       // up to "\n"; a line longer than the socket's limit() (the bytes before the
                // "\n") is refused with Error::line_too_long before it is buffered whole
    all,        // until the peer closes: done with Error::closed, take = all that came;
                // refused like a line once past the limit if the socket's limit_all()
    available,  // at least one byte buffered, none taken (LuaSocket's receive(0))
  };

  explicit ReadRule(Kind k, std::size_t n = 0) noexcept : kind(k), count(n) {}

  Kind kind;
  std::size_t count;  // exactly
  std::size_t take = 0;
  std::size_t skip = 0;

  IoOp::Status step(Socket& so, std::error_code& ec);

 private:
  std::size_t scanned_ = 0;  // line: bytes already searched for "\n"
};

}  // namespace corio
