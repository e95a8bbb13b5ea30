// MQTT 5 property sections, as the packet codec reads and writes them. Where a section sits
// is a bit set: a packet type's bit, or will_section for a will's properties in CONNECT.
#pragma once
#include <corio/mqtt_packet.hpp>

#include <cstdint>
#include <system_error>

#include "wire.hpp"

namespace corio::mqtt::props {

inline constexpr std::uint32_t will_section = 1;  // bit 0: no packet type is 0
inline constexpr std::uint32_t section(Type t) noexcept { return 1u << static_cast<unsigned>(t); }

// What a receiver refuses in a list: an unknown identifier, one not allowed in this section
// or repeated (bad_property), a value out of its range (protocol_error), a string that is
// not UTF-8 (bad_utf8), a value too wide for its kind (invalid_argument: encode only).
std::error_code check(const Properties& props, std::uint32_t where);

// A section: its length (a variable byte integer), then the properties, all checked.
std::error_code read(wire::Reader& r, std::uint32_t where, Properties& out);

// Writes a section whose list passed check().
void write(wire::Writer& w, const Properties& props);

}  // namespace corio::mqtt::props
