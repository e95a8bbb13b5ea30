// Resolver: asynchronous name resolution (c-ares driven by the loop: no thread blocks per
// lookup). IPv4 and IPv6; /etc/hosts is honoured; every lookup has a timeout.
#pragma once
#include <corio/address.hpp>
#include <corio/loop.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace corio {

// Resolution failures; messages are LuaSocket's (getaddrinfo's) words.
enum class ResolveError {
  not_found = 1,  // "host or service not provided, or not known"
  temporary,      // "temporary failure in name resolution"
  failure,        // "non-recoverable failure in name resolution"
  timeout,        // "timeout"
  cancelled,      // "cancelled"
  service,        // "service not supported for socket type" (a port that is no port)
  address_family, // "Address family for hostname not supported" (a numeric address of another family)
};
const std::error_category& resolve_category() noexcept;
inline std::error_code make_error_code(ResolveError e) noexcept { return {static_cast<int>(e), resolve_category()}; }

class Resolver {
 public:
  using Callback = std::function<void(std::error_code, std::vector<Address>)>;
  using Id = std::uint64_t;

  explicit Resolver(Loop& loop);
  ~Resolver();  // pending lookups are dropped without their callback
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // The loop's resolver, created on first use and destroyed with the loop.
  static Resolver& of(Loop& loop);
  static Resolver& current() { return of(Loop::current()); }

  // Resolves host (a name, or a numeric IPv4/IPv6 address) for port. family: AF_UNSPEC,
  // AF_INET or AF_INET6. The callback runs later from the loop, never inside resolve(),
  // with the addresses in the order connect() should try them.
  Id resolve(const std::string& host, std::uint16_t port, int family, Callback cb,
             Duration timeout = std::chrono::seconds(5));
  void cancel(Id id) noexcept;  // the callback will not run

  // Replaces the DNS servers of /etc/resolv.conf with "host[:port],..." (IPv6 as
  // "[addr]:port"), for later lookups. ResolveError::failure if the list is malformed or
  // lookups are pending (c-ares cannot switch servers under a query).
  std::error_code set_servers(const std::string& servers);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corio

template <>
struct std::is_error_code_enum<corio::ResolveError> : std::true_type {};
