#include <corio/address.hpp>

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <sys/un.h>

namespace corio {

Address::Address(const sockaddr* sa, socklen_t len) noexcept {
  len_ = len > sizeof ss_ ? sizeof ss_ : len;
  std::memcpy(&ss_, sa, len_);
}

std::optional<Address> Address::from_ip(std::string_view ip_view, std::uint16_t port, int family) {
  std::string ip(ip_view);
  Address a;
  if (ip == "*" || ip.empty()) ip = family == AF_INET6 ? "::" : "0.0.0.0";
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss_);
  if (family != AF_INET6 && inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len_ = sizeof *v4;
    return a;
  }
  if (family != AF_INET && inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len_ = sizeof *v6;
    return a;
  }
  return std::nullopt;
}

std::optional<Address> Address::from_path(std::string_view path) {
  Address a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.ss_);
  if (path.size() >= sizeof un->sun_path) return std::nullopt;
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  a.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

std::string Address::ip() const {
  char buf[INET6_ADDRSTRLEN] = "";
  switch (family()) {
    case AF_INET:
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr, buf, sizeof buf);
      return buf;
    case AF_INET6:
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr, buf, sizeof buf);
      return buf;
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&ss_);
      std::size_t max = len_ > offsetof(sockaddr_un, sun_path) ? len_ - offsetof(sockaddr_un, sun_path) : 0;
      return std::string(un->sun_path, strnlen(un->sun_path, max));
    }
    default:
      return {};
  }
}

std::uint16_t Address::port() const noexcept {
  switch (family()) {
    case AF_INET: return ntohs(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_port);
    case AF_INET6: return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_port);
    default: return 0;
  }
}

void Address::set_port(std::uint16_t port) noexcept {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&ss_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&ss_)->sin6_port = htons(port);
}

std::string Address::to_string() const {
  switch (family()) {
    case AF_INET: return ip() + ":" + std::to_string(port());
    case AF_INET6: return "[" + ip() + "]:" + std::to_string(port());
    default: return ip();
  }
}

}  // namespace corio
