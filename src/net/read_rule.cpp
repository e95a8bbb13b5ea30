#include <corio/read_rule.hpp>

#include <string_view>

namespace corio {

IoOp::Status ReadRule::step(Socket& so, std::error_code& ec) {
  for (;;) {
    std::string_view v = so.input().view();
    std::size_t want = Socket::kReadChunk;
    switch (kind) {
      case Kind::exactly:
        if (v.size() >= count) {
          take = skip = count;
          return IoOp::Status::done;
        }
        want = count - v.size();
        break;
      case Kind::line: {
        const std::size_t limit = so.limit();
        std::size_t nl = v.find('\n', scanned_);
        if (nl != std::string_view::npos) {
          if (nl > limit) {
            ec = Error::line_too_long;
          } else {
            take = nl;
            skip = nl + 1;
          }
          return IoOp::Status::done;
        }
        scanned_ = v.size();
        if (v.size() > limit) {  // refuse rather than grow without bound
          ec = Error::line_too_long;
          return IoOp::Status::done;
        }
        if (limit - v.size() < Socket::kReadChunk) want = limit - v.size() + 1;  // just enough to tell
        break;
      }
      case Kind::all:
        if (so.limit_all() && v.size() > so.limit()) {
          ec = Error::line_too_long;
          return IoOp::Status::done;
        }
        break;
      case Kind::available:
        if (!v.empty()) {
          take = skip = 0;
          return IoOp::Status::done;
        }
        break;
    }
    IoOp::Status st = so.fill(want, ec);
    if (st != IoOp::Status::done) return st;
    if (ec) {
      if (kind == Kind::all) take = skip = so.input().size();
      return IoOp::Status::done;
    }
  }
}

}  // namespace corio
