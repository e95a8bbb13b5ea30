#include "wakeup.hpp"

#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <system_error>
#include <sys/eventfd.h>
#include <unistd.h>

namespace corio {

Wakeup::Wakeup() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

Wakeup::~Wakeup() { close(fd_); }

void Wakeup::signal() noexcept {
  std::uint64_t one = 1;
  ssize_t r = write(fd_, &one, sizeof one);
  (void)r;  // EAGAIN means the counter is already non-zero: the loop will wake anyway
}

void Wakeup::drain() noexcept {
  std::uint64_t v;
  ssize_t r = read(fd_, &v, sizeof v);
  (void)r;
}

void Wakeup::forsake() noexcept {
  int fresh = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fresh < 0) return;
  dup3(fresh, fd_, O_CLOEXEC);
  close(fresh);
}

}  // namespace corio
