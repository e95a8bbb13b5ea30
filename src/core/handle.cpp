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

namespace {
ListedHandle::Forsake g_forsake[kHandleKinds] = {};
}

void ListedHandle::on_forsake(HandleKind kind, Forsake fn) noexcept { g_forsake[static_cast<std::size_t>(kind)] = fn; }

ListedHandle::Forsake ListedHandle::forsake_fn() const noexcept {
  return forsakable_ ? g_forsake[static_cast<std::size_t>(kind())] : nullptr;
}

}  // namespace corio
