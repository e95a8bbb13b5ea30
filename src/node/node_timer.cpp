// node_wide: a RecurringTimer's gate that takes a lease, so one process of the node runs.
//
// The lease's ttl is the interval less a margin of 1 ms (half the interval below 2 ms), as
// Kong's shm:add(key, true, interval - 0.001):
// - not more than the interval: the holder's own next check, one interval later on its
//   grid, must find the lease expired, or it would skip a run (and, with nobody else
//   checking in between, so would the node). The margin absorbs the difference in how
//   late two of its checks fire: the lease starts when a check runs, not when it was due.
// - not much less: another process checking between expiry and the holder's next check
//   takes it, so two runs are never closer than the ttl (interval - 1 ms).
// With check < interval (resty.timer's sub_interval) the same holds; a dead holder's
// lease is taken at the first check after it expires.
#include <corio/node_timer.hpp>

#include <stdexcept>
#include <utility>

namespace corio {

namespace {

Duration lease_ttl(Duration interval) {
  using namespace std::chrono_literals;
  const Duration margin = interval >= 2ms ? Duration(1ms) : interval / 2;
  const Duration ttl = interval - margin;
  return ttl > Duration::zero() ? ttl : Duration(1);
}

}  // namespace

RecurringTimer::Options node_wide(RecurringTimer::Options options, std::shared_ptr<LeaseTable> leases,
                                  std::string key, std::function<void(std::error_code)> on_error) {
  if (!options.recurring) throw std::invalid_argument("node_wide: the timer must be recurring");
  if (!leases) throw std::invalid_argument("node_wide: no lease table");
  if (key.empty() || key.size() > LeaseTable::kMaxKey) {
    throw std::invalid_argument("node_wide: key must be 1-200 bytes");
  }
  // A gate already set still has its say, first: the lease is only taken for a run.
  options.gate = [inner = std::move(options.gate), leases = std::move(leases), key = std::move(key),
                  on_error = std::move(on_error), ttl = lease_ttl(options.interval)] {
    if (inner && !inner()) return false;
    std::error_code ec;
    const bool mine = leases->try_acquire(key, ttl, ec);
    if (ec) {
      if (on_error) on_error(ec);
      return false;
    }
    return mine;
  };
  return options;
}

}  // namespace corio
