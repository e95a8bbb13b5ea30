// LeaseTable: the shm region (layout, opening, the robust mutex) and the leases in it.
//
// Crash safety: a process may die (SIGKILL) anywhere, also inside the lock. The lock is
// recovered (robust mutex) and every update is ordered so that a half-done one is harmless:
// a new key's bytes are written before its slot is marked used, a lease's holder before its
// deadline, the layout's magic after the rest of the layout.
#include <corio/lease_table.hpp>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace corio {
namespace {

constexpr std::uint64_t kMagic = 0x31534c6f69726f63ull;  // "corioLS1"
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kMaxName = 64;

enum SlotState : std::uint32_t { kEmpty = 0, kUsed = 1, kErased = 2 };

struct Slot {
  std::uint32_t state;  // SlotState, written last when a key moves in
  std::uint32_t key_len;
  std::int32_t holder;
  std::uint32_t reserved;
  std::int64_t until_ns;  // CLOCK_MONOTONIC, nanoseconds
  char key[LeaseTable::kMaxKey];
};

// What another program (or another build of corio) would differ in: checked on every open.
struct Header {
  std::uint64_t magic;  // written last: a region without it was never fully laid out
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint32_t slot_count;
  std::uint32_t slot_size;
  std::uint32_t key_max;
  std::uint32_t reserved;
  pthread_mutex_t mutex;
};

// Stores before this one are not reordered after it by the compiler. A process killed
// between two instructions leaves its stores in program order (its own view of memory),
// so this is all a half-done update needs to be seen in order by the next process.
inline void store_order() noexcept { std::atomic_signal_fence(std::memory_order_seq_cst); }

class LeaseCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "corio.lease"; }
  std::string message(int c) const override {
    switch (static_cast<LeaseError>(c)) {
      case LeaseError::bad_name:
        return "shm name must be 1-64 of [A-Za-z0-9_.-]";
      case LeaseError::bad_key:
        return "key must be 1-200 bytes";
      case LeaseError::full:
        return "lease region full (1024 keys)";
      case LeaseError::foreign:
        return "shm region has another layout or owner";
      case LeaseError::busy:
        return "lease lock busy";
    }
    return "unknown lease error";
  }
};
static_assert(LeaseTable::kSlots == 1024 && LeaseTable::kMaxKey == 200, "update the category's messages");

bool valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxName) return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_key(std::string_view key) noexcept { return !key.empty() && key.size() <= LeaseTable::kMaxKey; }

std::string shm_name_of(std::string_view name) {
  return "/corio." + std::to_string(::geteuid()) + "." + std::string(name);
}

std::error_code errno_code(int e = errno) { return {e, std::system_category()}; }

std::uint64_t hash(std::string_view key) noexcept {  // FNV-1a
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::int64_t to_ns(TimePoint t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// The per-process registry: one LeaseTable per shm name. Its mutex is held only for a
// lookup or an insertion, and held across fork() (pthread_atfork), so a child forked while
// another thread held it still finds it unlocked.
struct Registry {
  std::mutex mutex;
  std::map<std::string, std::weak_ptr<LeaseTable>, std::less<>> tables;

  static Registry& get() {
    static Registry* r = [] {
      auto* reg = new Registry;  // never destroyed: tables may outlive static destruction
      ::pthread_atfork([] { get().mutex.lock(); }, [] { get().mutex.unlock(); }, [] { get().mutex.unlock(); });
      return reg;
    }();
    return *r;
  }
};

// The descriptor's flock, tried for up to kLockWait: a creator stopped (not dead) while
// laying out must not hang every opener.
std::error_code flock_bounded(int fd) {
  const TimePoint end = Clock::now() + LeaseTable::kLockWait;
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return {};
    if (errno != EWOULDBLOCK && errno != EINTR) return errno_code();
    if (Clock::now() >= end) return LeaseError::busy;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// The shm descriptor, closed at the end of open(), its flock dropped first: the mapping
// holds the open file description, and with it a flock that close() alone would leave.
struct Descriptor {
  int fd = -1;
  ~Descriptor() {
    if (fd < 0) return;
    ::flock(fd, LOCK_UN);
    ::close(fd);
  }
};

}  // namespace

struct LeaseTable::Region {
  Header header;
  Slot slots[kSlots];

  static Header expected() noexcept {
    Header h{};
    h.magic = kMagic;
    h.version = kVersion;
    h.header_size = sizeof(Header);
    h.slot_count = kSlots;
    h.slot_size = sizeof(Slot);
    h.key_max = kMaxKey;
    return h;
  }
  static bool same_layout(const Header& a, const Header& b) noexcept {
    return a.magic == b.magic && a.version == b.version && a.header_size == b.header_size &&
           a.slot_count == b.slot_count && a.slot_size == b.slot_size && a.key_max == b.key_max;
  }
  // A region of the right size that was never fully laid out (its creator died half-way):
  // no magic, and what is written of the header is ours.
  bool half_laid_out() const noexcept {
    Header e = expected();
    e.magic = 0;
    const bool zero = header.version == 0 && header.header_size == 0 && header.slot_count == 0 &&
                      header.slot_size == 0 && header.key_max == 0;
    return header.magic == 0 && (zero || same_layout(header, e));
  }

  std::error_code lay_out() noexcept {
    std::memset(static_cast<void*>(this), 0, sizeof *this);
    Header e = expected();
    header.version = e.version;
    header.header_size = e.header_size;
    header.slot_count = e.slot_count;
    header.slot_size = e.slot_size;
    header.key_max = e.key_max;
    pthread_mutexattr_t attr;
    if (int rc = ::pthread_mutexattr_init(&attr)) return errno_code(rc);
    int rc = ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0) rc = ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (rc == 0) rc = ::pthread_mutex_init(&header.mutex, &attr);
    ::pthread_mutexattr_destroy(&attr);
    if (rc) return errno_code(rc);
    store_order();
    header.magic = kMagic;
    return {};
  }

  struct Probe {
    Slot* found = nullptr;  // key's slot
    Slot* free = nullptr;   // the first empty or erased slot on key's path
  };
  // Linear probing from key's hash; stops at the first empty slot (a key is never past one).
  Probe probe(std::string_view key) noexcept {
    Probe p;
    const std::size_t home = hash(key) & (kSlots - 1);
    for (std::size_t i = 0; i < kSlots; ++i) {
      Slot& s = slots[(home + i) & (kSlots - 1)];
      if (s.state == kUsed) {
        if (s.key_len == key.size() && std::memcmp(s.key, key.data(), key.size()) == 0) {
          p.found = &s;
          return p;
        }
        continue;
      }
      if (!p.free) p.free = &s;
      if (s.state != kErased) return p;  // empty (or torn: never past a key either)
    }
    return p;
  }

  // Erased slots followed by an empty one are on no key's path: make them empty again, so
  // that erasing keeps misses short.
  void reclaim(Slot* s) noexcept {
    std::size_t i = static_cast<std::size_t>(s - slots);
    while (slots[i].state == kErased && slots[(i + 1) & (kSlots - 1)].state == kEmpty) {
      slots[i].state = kEmpty;
      i = (i + kSlots - 1) & (kSlots - 1);
    }
  }
};
static_assert((LeaseTable::kSlots & (LeaseTable::kSlots - 1)) == 0,
              "probing masks with kSlots - 1");

const std::error_category& lease_category() noexcept {
  static const LeaseCategory c;
  return c;
}

std::error_code make_error_code(LeaseError e) noexcept { return {static_cast<int>(e), lease_category()}; }

LeaseTable::LeaseTable(std::string shm_name, Region* region, std::size_t size) noexcept
    : shm_name_(std::move(shm_name)), region_(region), size_(size) {}

LeaseTable::~LeaseTable() { ::munmap(region_, size_); }

std::shared_ptr<LeaseTable> LeaseTable::open(std::string_view name, std::error_code& ec) {
  ec.clear();
  if (!valid_name(name)) {
    ec = LeaseError::bad_name;
    return nullptr;
  }
  std::string shm = shm_name_of(name);
  Registry& reg = Registry::get();
  {
    std::lock_guard<std::mutex> g(reg.mutex);
    auto it = reg.tables.find(shm);
    if (it != reg.tables.end()) {
      if (auto t = it->second.lock()) return t;
    }
  }

  // Opened outside the registry's lock (the flock may take kLockWait); a thread that loses
  // the race to register drops its mapping and takes the winner's.
  Descriptor d;
  d.fd = ::shm_open(shm.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (d.fd < 0) {
    ec = errno_code();
    return nullptr;
  }
  if ((ec = flock_bounded(d.fd))) return nullptr;
  struct stat st;
  if (::fstat(d.fd, &st) != 0) {
    ec = errno_code();
    return nullptr;
  }
  // Another user's region, or one that others may write, is never read.
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    ec = LeaseError::foreign;
    return nullptr;
  }
  const std::size_t size = sizeof(Region);
  const bool fresh = st.st_size == 0;
  if (!fresh && static_cast<std::size_t>(st.st_size) != size) {
    ec = LeaseError::foreign;
    return nullptr;
  }
  if (fresh && ::ftruncate(d.fd, static_cast<off_t>(size)) != 0) {
    ec = errno_code();
    return nullptr;
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, d.fd, 0);
  if (p == MAP_FAILED) {
    ec = errno_code();
    return nullptr;
  }
  auto* region = static_cast<Region*>(p);
  if (fresh || region->half_laid_out()) {
    ec = region->lay_out();
  } else if (!Region::same_layout(region->header, Region::expected())) {
    ec = LeaseError::foreign;
  }
  if (ec) {
    ::munmap(p, size);
    return nullptr;
  }
  std::shared_ptr<LeaseTable> made;
  try {
    made.reset(new LeaseTable(std::move(shm), region, size));
  } catch (...) {
    ::munmap(p, size);
    throw;
  }

  std::lock_guard<std::mutex> g(reg.mutex);
  for (auto it = reg.tables.begin(); it != reg.tables.end();) {
    it = it->second.expired() ? reg.tables.erase(it) : std::next(it);
  }
  auto [it, inserted] = reg.tables.try_emplace(made->shm_name(), made);
  if (!inserted) {
    if (auto t = it->second.lock()) return t;  // another thread's open won
    it->second = made;
  }
  return made;
}

std::error_code LeaseTable::unlink(std::string_view name) {
  if (!valid_name(name)) return LeaseError::bad_name;
  std::string shm = shm_name_of(name);
  {
    Registry& reg = Registry::get();
    std::lock_guard<std::mutex> g(reg.mutex);
    reg.tables.erase(shm);
  }
  if (::shm_unlink(shm.c_str()) != 0) return errno_code();
  return {};
}

// CLOCK_MONOTONIC (pthread_mutex_clocklock), not timedlock's CLOCK_REALTIME: a wall-clock
// step must neither stretch the wait nor make it fail at once.
std::error_code LeaseTable::lock() noexcept {
  timespec deadline;
  ::clock_gettime(CLOCK_MONOTONIC, &deadline);
  const auto wait_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(kLockWait).count();
  deadline.tv_sec += static_cast<time_t>(wait_ns / 1000000000);
  deadline.tv_nsec += static_cast<long>(wait_ns % 1000000000);
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_nsec -= 1000000000;
    ++deadline.tv_sec;
  }
  int rc = ::pthread_mutex_clocklock(&region_->header.mutex, CLOCK_MONOTONIC, &deadline);
  if (rc == EOWNERDEAD) {
    // Its holder died inside: every update is harmless half-done (see the top), so the
    // table is usable as it is.
    rc = ::pthread_mutex_consistent(&region_->header.mutex);
  }
  if (rc == 0) return {};
  if (rc == ETIMEDOUT) return LeaseError::busy;
  return errno_code(rc);
}

void LeaseTable::unlock() noexcept { ::pthread_mutex_unlock(&region_->header.mutex); }

bool LeaseTable::try_acquire(std::string_view key, Duration ttl, std::error_code& ec) {
  ec.clear();
  if (!valid_key(key)) {
    ec = LeaseError::bad_key;
    return false;
  }
  if (ttl <= Duration::zero()) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return false;
  }
  if ((ec = lock())) return false;
  const TimePoint now = Clock::now();
  const TimePoint until = ttl < TimePoint::max() - now ? now + ttl : TimePoint::max();
  Region::Probe p = region_->probe(key);
  bool taken = false;
  if (p.found) {
    Slot& s = *p.found;
    if (s.until_ns <= to_ns(now)) {
      s.holder = ::getpid();
      store_order();  // a half-done take leaves the lease expired: harmless
      s.until_ns = to_ns(until);
      taken = true;
    }
  } else if (p.free) {
    Slot& s = *p.free;
    s.key_len = static_cast<std::uint32_t>(key.size());
    std::memcpy(s.key, key.data(), key.size());
    s.holder = ::getpid();
    s.until_ns = to_ns(until);
    store_order();  // the key is whole before the slot counts
    s.state = kUsed;
    taken = true;
  } else {
    ec = LeaseError::full;
  }
  unlock();
  return taken;
}

std::optional<LeaseTable::Lease> LeaseTable::lease(std::string_view key, std::error_code& ec) {
  ec.clear();
  if (!valid_key(key)) {
    ec = LeaseError::bad_key;
    return std::nullopt;
  }
  if ((ec = lock())) return std::nullopt;
  std::optional<Lease> out;
  if (Slot* s = region_->probe(key).found) {
    out = Lease{static_cast<pid_t>(s->holder), TimePoint(std::chrono::nanoseconds(s->until_ns))};
  }
  unlock();
  return out;
}

bool LeaseTable::erase(std::string_view key, std::error_code& ec) {
  ec.clear();
  if (!valid_key(key)) {
    ec = LeaseError::bad_key;
    return false;
  }
  if ((ec = lock())) return false;
  Slot* s = region_->probe(key).found;
  if (s) {
    s->state = kErased;
    region_->reclaim(s);
  }
  unlock();
  return s != nullptr;
}

}  // namespace corio
