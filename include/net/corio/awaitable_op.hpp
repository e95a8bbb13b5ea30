// AwaitableOp: an engine operation (IoOp, or one built on it such as ConnectOp) that a C++
// coroutine co_awaits. It lives in the awaiting frame, so waiting allocates nothing:
// await_ready() submits it (true when it finished at once: no suspension), finish() resumes
// the frame. A frame destroyed while the op is queued simply dequeues it (~IoOp). Stream,
// Listener and Datagram build theirs on it, the way the Lua sockets build theirs on SocketOp.
#pragma once
#include <corio/error.hpp>
#include <corio/socket.hpp>

#include <coroutine>
#include <optional>

namespace corio {

template <class Op = IoOp>
class AwaitableOp : public Op {
 public:
  // socket == nullptr (an empty or moved-from object): the op fails with Error::closed.
  AwaitableOp(Socket* socket, Direction d, std::optional<Duration> timeout) noexcept
      : socket_(socket), dir_(d), timeout_(timeout) {}

  bool await_ready() {
    if (!socket_) {
      this->error = Error::closed;
      return true;
    }
    return socket_->submit(*this, dir_, timeout_);
  }
  void await_suspend(std::coroutine_handle<> h) noexcept { handle_ = h; }
  void finish() override { handle_.resume(); }

 protected:
  Socket* const socket_;
  const Direction dir_;
  const std::optional<Duration> timeout_;
  std::coroutine_handle<> handle_;
};

}  // namespace corio
