// Address: a socket address (IPv4, IPv6 or a Unix path) held by value.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/socket.h>

namespace corio {

class Address {
 public:
  Address() = default;
  Address(const sockaddr* sa, socklen_t len) noexcept;
  // A numeric IPv4 or IPv6 address (no name lookup); "*" is the wildcard of `family`.
  static std::optional<Address> from_ip(std::string_view ip, std::uint16_t port, int family = AF_UNSPEC);
  static std::optional<Address> from_path(std::string_view path);  // AF_UNIX

  int family() const noexcept { return ss_.ss_family; }
  std::string ip() const;  // or the path for AF_UNIX
  std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  std::string to_string() const;  // "1.2.3.4:80", "[::1]:80", "/path"

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&ss_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&ss_); }
  socklen_t size() const noexcept { return len_; }
  socklen_t* size_ptr() noexcept {
    len_ = sizeof ss_;
    return &len_;
  }

 private:
  sockaddr_storage ss_{};
  socklen_t len_ = 0;
};

}  // namespace corio
