#include <corio/socket.hpp>

#include <algorithm>
#include <cerrno>
#include <sys/socket.h>

namespace corio {

IoOp::Status Socket::accept(int& fd, std::error_code& ec, Duration& backoff, TimePoint& resume_at) {
  if (fd_ < 0) {
    ec = Error::closed;
    return IoOp::Status::done;
  }
  for (;;) {
    fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      backoff = Duration::zero();
      return IoOp::Status::done;
    }
    switch (errno) {
      case EAGAIN:
#if EAGAIN != EWOULDBLOCK
      case EWOULDBLOCK:
#endif
        return IoOp::Status::wait;
      case EINTR:
      case ECONNABORTED:
      case EPROTO:
        continue;  // that connection is gone; take the next
      case EMFILE:
      case ENFILE:
      case ENOBUFS:
      case ENOMEM:
        backoff = backoff == Duration::zero() ? std::chrono::milliseconds(10)
                                              : std::min<Duration>(backoff * 2, std::chrono::seconds(1));
        resume_at = Loop::now() + backoff;
        return IoOp::Status::throttled;
      default:
        ec = {errno, std::generic_category()};
        return IoOp::Status::done;
    }
  }
}

}  // namespace corio
