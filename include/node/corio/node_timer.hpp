// A node-wide timer: a RecurringTimer whose gate takes `key`'s lease in a LeaseTable for
// interval - 1 ms (half the interval below 2 ms; src/node/node_timer.cpp says why) at each
// check, so that of every process of the node (and every timer of the key in one process)
// one runs it per interval. A holder that dies is replaced within
// interval + check. Lua's resty.timer key_name and a C++ program share keys this way.
#pragma once
#include <corio/lease_table.hpp>
#include <corio/recurring_timer.hpp>

#include <functional>
#include <memory>
#include <string>
#include <system_error>

namespace corio {

// Options with the gate set (recurring must be true); on a lease error the check does not
// run and on_error (if any) is told. A gate already in options is asked first, and the
// lease taken only if it says yes. Throws std::invalid_argument if not recurring, without
// a table, or with a key that is not 1-200 bytes.
RecurringTimer::Options node_wide(RecurringTimer::Options options, std::shared_ptr<LeaseTable> leases,
                                  std::string key, std::function<void(std::error_code)> on_error = {});

}  // namespace corio
