#include <corio/handle.hpp>

namespace corio {

const char* handle_kind_name(HandleKind kind) noexcept {
  switch (kind) {
    case HandleKind::timer: return "timer";
    case HandleKind::io_watch: return "io_watch";
    case HandleKind::signal_watch: return "signal_watch";
    case HandleKind::socket: return "socket";
    case HandleKind::internal: return "internal";
  }
  return "?";
}

}  // namespace corio
