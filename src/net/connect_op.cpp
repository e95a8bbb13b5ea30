#include <corio/connect_op.hpp>

#include <cerrno>
#include <utility>
#include <sys/socket.h>

namespace corio {
namespace {

std::error_code connect_error(int err) {
  return err == ECONNREFUSED ? std::error_code(Error::refused) : std::error_code(err, std::generic_category());
}

}  // namespace

ConnectOp::~ConnectOp() {
  if (lookup_) resolver_->cancel(lookup_);
}

bool ConnectOp::start(Socket& so, Target target, Action action, std::optional<Duration> timeout,
                      std::optional<TimePoint> deadline, Resolver* resolver) {
  if (lookup_) resolver_->cancel(std::exchange(lookup_, 0));
  socket_ = &so;
  target_ = std::move(target);
  action_ = action;
  timeout_ = timeout;
  deadline_ = deadline;
  error = {};
  addrs_.clear();
  next_ = 0;
  in_progress_ = false;
  resolving_ = false;
  // "*" is the wildcard address; connecting to it reaches the loopback, as getaddrinfo's
  // NULL host does. An empty host is no address at all (the resolver says so).
  if (target_.address) {
    addrs_.push_back(*target_.address);
  } else if (target_.host == "*") {
    if (action_ == Action::bind) {
      addrs_.push_back(*Address::from_ip("*", target_.port, target_.family));
    } else {
      if (target_.family != AF_INET6) addrs_.push_back(*Address::from_ip("127.0.0.1", target_.port));
      if (target_.family != AF_INET) addrs_.push_back(*Address::from_ip("::1", target_.port));
    }
  } else if (auto a = target_.host.empty() ? std::nullopt : Address::from_ip(target_.host, target_.port, target_.family)) {
    addrs_.push_back(*a);
  } else {
    resolving_ = true;
    resolver_ = resolver ? resolver : &Resolver::of(so.loop());
    // The callback never runs inside resolve(): the op is queued by then.
    auto done = [this](std::error_code ec, std::vector<Address> addrs) {
      lookup_ = 0;
      resolved(ec, std::move(addrs));
    };
    lookup_ = resolver_->resolve(target_.host, target_.port, target_.family, std::move(done));
  }
  return so.submit(*this, Direction::write, stage_timeout());
}

void ConnectOp::resolved(std::error_code ec, std::vector<Address> addrs) {
  resolving_ = false;
  if (ec)
    error = ec;
  else
    addrs_ = std::move(addrs);
  if (queued()) socket_->wake(*this);  // else it already ended (closed, timed out)
}

std::optional<Duration> ConnectOp::stage_timeout() const {
  if (!deadline_) return timeout_;
  Duration left = std::max(Duration::zero(), *deadline_ - Loop::now());
  return timeout_ && *timeout_ < left ? *timeout_ : left;
}

IoOp::Status ConnectOp::step(Socket& so) {
  if (resolving_) return Status::pending;
  if (in_progress_) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(so.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (!err) {
      Address peer;
      if (::getpeername(so.fd(), peer.data(), peer.size_ptr()) != 0 && errno == ENOTCONN)
        return Status::wait;  // still in progress
      in_progress_ = false;
      error = {};
      return Status::done;
    }
    in_progress_ = false;
    error = connect_error(err);
  }
  while (next_ < addrs_.size()) {
    const Address& a = addrs_[next_++];
    if (target_.family != AF_UNSPEC && a.family() != target_.family) continue;
    // Only the first attempt may use the descriptor the socket has, and only a socket of a
    // set family does (LuaSocket's rule: tcp() makes a descriptor per attempt until one connects).
    bool reuse = next_ == 1 && so.fd() >= 0 && target_.family != AF_UNSPEC && so.family() == a.family();
    if (!reuse) {
      if ((error = so.renew(a.family(), target_.type))) continue;
    }
    if (action_ == Action::bind) {
      if (!(error = so.bind(a))) return Status::done;
      continue;
    }
    int r;
    do r = ::connect(so.fd(), a.data(), a.size());
    while (r != 0 && errno == EINTR);
    if (r == 0) {
      error = {};
      return Status::done;
    }
    if (errno == EINPROGRESS || errno == EAGAIN) {
      in_progress_ = true;
      if (queued()) so.rearm(*this, stage_timeout());  // this attempt's own time
      return Status::wait;
    }
    int err = errno;
    error = connect_error(err);
    // The descriptor is connected, or connecting from an earlier call: that is the answer,
    // and a fresh descriptor for the next address would drop that connection.
    if (err == EISCONN || err == EALREADY) return Status::done;
  }
  if (!error) error = std::make_error_code(std::errc::address_family_not_supported);
  return Status::done;
}

bool ConnectOp::timed_out(Socket& so) {
  bool more = in_progress_ && next_ < addrs_.size();
  bool time_left = timeout_ != Duration::zero() && (!deadline_ || Loop::now() < *deadline_);
  if (!more || !time_left) return false;
  in_progress_ = false;
  error = Error::timeout;  // the last error, should every later attempt fail to start
  so.wake(*this);          // the next address; this may finish (and delete) the op
  return true;
}

}  // namespace corio
