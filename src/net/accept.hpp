// One accept for an IoOp::step() on a listening socket, shared by corio::Listener and the
// Lua server sockets (src/lua/lstream.cpp).
#pragma once
#include <corio/socket.hpp>

namespace corio {

// Returns `done` with `fd` (non-blocking, close-on-exec) or with `ec` set; `wait` until
// the socket is readable; or, out of descriptors or memory, `throttled` with `resume_at`
// set: the connection stays queued, so retrying at once would spin. `backoff` (start at
// zero, kept by the op) grows from 10 ms, doubling up to 1 s.
IoOp::Status accept_one(int listen_fd, int& fd, std::error_code& ec, Duration& backoff, TimePoint& resume_at);

}  // namespace corio
