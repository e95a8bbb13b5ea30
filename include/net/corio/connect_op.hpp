// ConnectOp: connects a Socket (or binds it) to host:port the way LuaSocket does. A name is
// resolved first, asynchronously: meanwhile the op waits queued on the socket, so close()
// and the timeout end the lookup too. Then each address is tried in turn until one works:
// the first attempt on the socket's own descriptor if the target's family is set and the
// descriptor is of it (its options and bind kept), every other on a fresh descriptor
// (Socket::renew, which applies the options and the bind again), since a socket
// whose connect failed cannot be reused. A refused, failed or timed out attempt moves on to
// the next address; the op fails with the last attempt's error. With a zero timeout it stops
// after the first attempt, which goes on in the background (LuaSocket's non-blocking
// connect: "timeout" now, "already connected" on the next call).
#pragma once
#include <corio/address.hpp>
#include <corio/resolver.hpp>
#include <corio/socket.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace corio {

class ConnectOp : public IoOp {
 public:
  enum class Action { connect, bind };
  struct Target {
    std::string host;             // numeric, a name, or "*" (bind: the wildcard address)
    std::uint16_t port = 0;
    int family = AF_UNSPEC;       // only addresses of this family (AF_UNSPEC: any)
    int type = SOCK_STREAM;
    std::optional<Address> address;  // given instead of host (a Unix path, say)
  };

  ConnectOp() noexcept = default;
  ~ConnectOp() override;  // drops a lookup in flight

  // Starts the op on so, queued for writing: true if it finished at once (see error).
  // timeout bounds each stage (the lookup, each attempt); deadline, if any, the whole op.
  // Names go to `resolver` (default: the socket's loop's, Resolver::of).
  bool start(Socket& so, Target target, Action action, std::optional<Duration> timeout,
             std::optional<TimePoint> deadline = std::nullopt, Resolver* resolver = nullptr);

  Status step(Socket& so) override;
  bool timed_out(Socket& so) override;

 private:
  void resolved(std::error_code ec, std::vector<Address> addrs);
  std::optional<Duration> stage_timeout() const;

  Socket* socket_ = nullptr;
  Resolver* resolver_ = nullptr;
  Target target_;
  Action action_ = Action::connect;
  std::optional<Duration> timeout_;
  std::optional<TimePoint> deadline_;
  std::vector<Address> addrs_;
  std::size_t next_ = 0;
  Resolver::Id lookup_ = 0;
  bool resolving_ = false;
  bool in_progress_ = false;  // an attempt's connect() is under way
};

}  // namespace corio
