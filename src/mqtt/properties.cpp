// The MQTT 5 property table (identifier -> value type, name, the packets that may carry it),
// the Properties methods, and the property section's wire form.
#include <corio/mqtt_packet.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "properties.hpp"
#include "topic.hpp"
#include "wire.hpp"

namespace corio::mqtt {
namespace {

using props::section;
using props::will_section;
using K = PropertyKind;

struct Spec {
  const char* name = nullptr;
  PropertyKind kind = K::none;
  std::uint32_t where = 0;  // props::section bits
};

constexpr std::size_t table_size = 0x2B;

// MQTT 5.0, table 2-4.
constexpr std::array<Spec, table_size> table = [] {
  constexpr std::uint32_t W = will_section, CONNECT = section(Type::connect), CONNACK = section(Type::connack),
                          PUBLISH = section(Type::publish), SUBSCRIBE = section(Type::subscribe),
                          DISCONNECT = section(Type::disconnect), AUTH = section(Type::auth);
  constexpr std::uint32_t ACKS = section(Type::puback) | section(Type::pubrec) | section(Type::pubrel) |
                                 section(Type::pubcomp) | section(Type::suback) | section(Type::unsuback);
  std::array<Spec, table_size> t{};
  t[0x01] = {"payload_format_indicator", K::byte, PUBLISH | W};
  t[0x02] = {"message_expiry_interval", K::u32, PUBLISH | W};
  t[0x03] = {"content_type", K::string, PUBLISH | W};
  t[0x08] = {"response_topic", K::string, PUBLISH | W};
  t[0x09] = {"correlation_data", K::binary, PUBLISH | W};
  t[0x0B] = {"subscription_identifier", K::varint, PUBLISH | SUBSCRIBE};
  t[0x11] = {"session_expiry_interval", K::u32, CONNECT | CONNACK | DISCONNECT};
  t[0x12] = {"assigned_client_identifier", K::string, CONNACK};
  t[0x13] = {"server_keep_alive", K::u16, CONNACK};
  t[0x15] = {"authentication_method", K::string, CONNECT | CONNACK | AUTH};
  t[0x16] = {"authentication_data", K::binary, CONNECT | CONNACK | AUTH};
  t[0x17] = {"request_problem_information", K::byte, CONNECT};
  t[0x18] = {"will_delay_interval", K::u32, W};
  t[0x19] = {"request_response_information", K::byte, CONNECT};
  t[0x1A] = {"response_information", K::string, CONNACK};
  t[0x1C] = {"server_reference", K::string, CONNACK | DISCONNECT};
  t[0x1F] = {"reason_string", K::string, CONNACK | ACKS | DISCONNECT | AUTH};
  t[0x21] = {"receive_maximum", K::u16, CONNECT | CONNACK};
  t[0x22] = {"topic_alias_maximum", K::u16, CONNECT | CONNACK};
  t[0x23] = {"topic_alias", K::u16, PUBLISH};
  t[0x24] = {"maximum_qos", K::byte, CONNACK};
  t[0x25] = {"retain_available", K::byte, CONNACK};
  t[0x26] = {"user_property", K::pair, CONNECT | CONNACK | PUBLISH | W | ACKS | SUBSCRIBE |
                                           section(Type::unsubscribe) | DISCONNECT | AUTH};
  t[0x27] = {"maximum_packet_size", K::u32, CONNECT | CONNACK};
  t[0x28] = {"wildcard_subscription_available", K::byte, CONNACK};
  t[0x29] = {"subscription_identifier_available", K::byte, CONNACK};
  t[0x2A] = {"shared_subscription_available", K::byte, CONNACK};
  return t;
}();

const Spec& spec(std::uint8_t id) noexcept {
  static constexpr Spec unknown{};
  return id < table_size ? table[id] : unknown;
}

// The value rules of MQTT 5 section 3 (a flag is 0 or 1, a maximum is not 0 ...).
bool value_allowed(const Property& p) noexcept {
  switch (p.id) {
    case PropertyId::payload_format_indicator:
    case PropertyId::request_problem_information:
    case PropertyId::request_response_information:
    case PropertyId::maximum_qos:
    case PropertyId::retain_available:
    case PropertyId::wildcard_subscription_available:
    case PropertyId::subscription_identifier_available:
    case PropertyId::shared_subscription_available:
      return p.number <= 1;
    case PropertyId::subscription_identifier:
    case PropertyId::receive_maximum:
    case PropertyId::maximum_packet_size:
    case PropertyId::topic_alias:
      return p.number != 0;
    case PropertyId::response_topic:
      return !p.text.empty() && topic::valid_name(p.text);
    default:
      return true;
  }
}

// The value sits in the fields its kind uses, the others empty (a string given to a number
// property would otherwise go out as 0), and fits the wire form. A decoded one always does.
bool fits(const Property& p, PropertyKind k) noexcept {
  switch (k) {
    case K::none: return false;
    case K::byte: return p.number <= 0xFF && p.text.empty() && p.value.empty();
    case K::u16: return p.number <= 0xFFFF && p.text.empty() && p.value.empty();
    case K::u32: return p.text.empty() && p.value.empty();
    case K::varint: return p.number <= wire::max_varint && p.text.empty() && p.value.empty();
    case K::string:
    case K::binary: return p.number == 0 && p.text.size() <= wire::max_field && p.value.empty();
    case K::pair: return p.number == 0 && p.text.size() <= wire::max_field && p.value.size() <= wire::max_field;
  }
  return false;
}

Property blank(PropertyId id) {
  Property p;
  p.id = id;
  return p;
}

// The one entry for id, its value cleared: the first one found (any later ones dropped), or
// a new one at the end.
Property& slot(std::vector<Property>& list, PropertyId id) {
  auto same = [id](const Property& p) { return p.id == id; };
  auto it = std::find_if(list.begin(), list.end(), same);
  if (it == list.end()) return list.emplace_back(blank(id));
  list.erase(std::remove_if(it + 1, list.end(), same), list.end());
  *it = blank(id);
  return *it;
}

}  // namespace

PropertyKind property_kind(std::uint8_t id) noexcept { return spec(id).kind; }
const char* property_name(std::uint8_t id) noexcept { return spec(id).name; }

std::optional<std::uint8_t> property_id(std::string_view name) noexcept {
  for (std::size_t id = 0; id < table_size; ++id)
    if (table[id].name && name == table[id].name) return static_cast<std::uint8_t>(id);
  return std::nullopt;
}

const Property* Properties::find(PropertyId id) const noexcept {
  for (const Property& p : list)
    if (p.id == id) return &p;
  return nullptr;
}

std::optional<std::uint32_t> Properties::number(PropertyId id) const noexcept {
  if (const Property* p = find(id)) return p->number;
  return std::nullopt;
}

void Properties::set(PropertyId id, std::uint32_t n) { slot(list, id).number = n; }
void Properties::set(PropertyId id, std::string s) { slot(list, id).text = std::move(s); }

void Properties::add_user(std::string name, std::string value) {
  list.push_back(Property{PropertyId::user_property, 0, std::move(name), std::move(value)});
}

namespace props {

std::error_code check(const Properties& props, std::uint32_t where) {
  std::uint64_t seen = 0;  // identifiers are below 64
  for (const Property& p : props.list) {
    auto id = static_cast<std::uint8_t>(p.id);
    const Spec& s = spec(id);
    if (s.kind == K::none || !(s.where & where)) return Errc::bad_property;
    // Several user properties, and several subscription identifiers in a PUBLISH (one per
    // matching subscription); any other identifier at most once.
    bool repeats = p.id == PropertyId::user_property ||
                   (p.id == PropertyId::subscription_identifier && where == section(Type::publish));
    if ((seen >> id & 1) && !repeats) return Errc::bad_property;
    seen |= std::uint64_t{1} << id;
    if (!fits(p, s.kind)) return Errc::invalid_argument;
    if (s.kind == K::string || s.kind == K::pair) {
      if (!wire::valid_utf8(p.text) || !wire::valid_utf8(p.value)) return Errc::bad_utf8;
    }
    if (!value_allowed(p)) return Errc::protocol_error;
  }
  return {};
}

std::error_code read(wire::Reader& r, std::uint32_t where, Properties& out) {
  std::uint32_t len;
  std::string_view bytes;
  if (!r.varint(len) || !r.take(len, bytes)) return Errc::malformed;
  wire::Reader in(bytes);
  while (!in.done()) {
    // The identifier is a variable byte integer, but every known one is a single byte: a
    // byte of 0x80 or more starts an unknown identifier.
    std::uint8_t id;
    in.u8(id);
    Property p = blank(static_cast<PropertyId>(id));
    std::uint8_t b = 0;
    std::uint16_t h = 0;
    std::string_view a, v;
    bool ok = true;
    switch (spec(id).kind) {
      case K::none: return Errc::bad_property;
      case K::byte: ok = in.u8(b); p.number = b; break;
      case K::u16: ok = in.u16(h); p.number = h; break;
      case K::u32: ok = in.u32(p.number); break;
      case K::varint: ok = in.varint(p.number); break;
      case K::string:
      case K::binary: ok = in.field(a); p.text = a; break;
      case K::pair: ok = in.field(a) && in.field(v); p.text = a; p.value = v; break;
    }
    if (!ok) return Errc::malformed;
    out.list.push_back(std::move(p));
  }
  return check(out, where);
}

void write(wire::Writer& w, const Properties& props) {
  auto body = [&props](wire::Writer& to) {
    for (const Property& p : props.list) {
      to.u8(static_cast<std::uint8_t>(p.id));
      switch (property_kind(static_cast<std::uint8_t>(p.id))) {
        case K::none: break;
        case K::byte: to.u8(static_cast<std::uint8_t>(p.number)); break;
        case K::u16: to.u16(static_cast<std::uint16_t>(p.number)); break;
        case K::u32: to.u32(p.number); break;
        case K::varint: to.varint(p.number); break;
        case K::string:
        case K::binary: to.field(p.text); break;
        case K::pair:
          to.field(p.text);
          to.field(p.value);
          break;
      }
    }
  };
  wire::Writer count;
  body(count);
  w.varint(static_cast<std::uint32_t>(count.size()));
  body(w);
}

}  // namespace props
}  // namespace corio::mqtt
