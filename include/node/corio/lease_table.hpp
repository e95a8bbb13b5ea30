// LeaseTable: node-wide leases — keys in a named POSIX shared-memory region of this
// machine, each held by one process until a deadline on CLOCK_MONOTONIC (which every
// process of the machine shares). A process-shared robust mutex guards the table, so a
// process killed inside it, or while holding a lease, never wedges the others: the lock is
// recovered, the lease just expires. resty.timer's node-wide timers run on it
// (corio/node_timer.hpp).
//
// The region of `name` is the shm object "/corio.<uid>.<name>" (name: 1-64 of [A-Za-z0-9_.-]),
// mode 0600, created and laid out on first use under an flock of its descriptor (a creator
// that dies half-way leaves a region the next opener lays out). It holds kSlots keys of up
// to kMaxKey bytes. A region of the same name with another layout (magic, version, sizes)
// or another owner, or one that group or others may access, is refused with
// LeaseError::foreign, never read.
#pragma once
#include <corio/clock.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <sys/types.h>

namespace corio {

enum class LeaseError {
  bad_name = 1,  // not 1-64 of [A-Za-z0-9_.-]
  bad_key,       // empty or longer than kMaxKey
  full,          // every slot holds another key
  foreign,       // the region has another layout or owner
  busy,          // the lock was not had within kLockWait (a holder stopped, not dead)
};
const std::error_category& lease_category() noexcept;
std::error_code make_error_code(LeaseError e) noexcept;

class LeaseTable {
 public:
  static constexpr std::size_t kSlots = 1024;
  static constexpr std::size_t kMaxKey = 200;
  static constexpr Duration kLockWait = std::chrono::milliseconds(100);

  // The table of name, opened (created on first use). One per name per process: a second
  // open gives the same table. On failure: nullptr and ec (LeaseError or errno's).
  static std::shared_ptr<LeaseTable> open(std::string_view name, std::error_code& ec);
  ~LeaseTable();
  LeaseTable(const LeaseTable&) = delete;
  LeaseTable& operator=(const LeaseTable&) = delete;

  // Takes key's lease for ttl if nobody holds it (never taken, or expired): true if this
  // process holds it now. A live lease is never taken, not even by its holder — so two
  // timers of one key in one process also run once per lease. ttl must be positive
  // (std::errc::invalid_argument otherwise); a deadline past TimePoint::max() is clamped.
  bool try_acquire(std::string_view key, Duration ttl, std::error_code& ec);

  struct Lease {
    pid_t holder;
    TimePoint until;
  };
  // key's last lease (expired or not); nullopt if the key was never taken.
  std::optional<Lease> lease(std::string_view key, std::error_code& ec);
  // Forgets key (a test's clean slate); false if it was not there.
  bool erase(std::string_view key, std::error_code& ec);

  const std::string& shm_name() const noexcept { return shm_name_; }  // "/corio.<uid>.<name>"
  // Removes name's shm object from the system (shm_unlink); mappings stay valid.
  // A later open of name in this process makes a new region, as it does in the others.
  static std::error_code unlink(std::string_view name);

 private:
  struct Region;
  friend struct LeaseTableAccess;  // defined by tests and benchmarks only: lock() and unlock()
  LeaseTable(std::string shm_name, Region* region, std::size_t size) noexcept;
  // The region's robust mutex, had within kLockWait (LeaseError::busy otherwise); a dead
  // holder's lock is taken over (EOWNERDEAD -> pthread_mutex_consistent).
  std::error_code lock() noexcept;
  void unlock() noexcept;
  std::string shm_name_;
  Region* region_;
  std::size_t size_;
};

}  // namespace corio

template <>
struct std::is_error_code_enum<corio::LeaseError> : std::true_type {};
