// The MQTT control packet codec: the fixed header, then each packet's body. Decoding refuses
// what MQTT 3.1.1 and 5.0 call malformed or a protocol error; encoding refuses (invalid_argument)
// whatever decoding would refuse, so that every packet it writes reads back equal.
#include <corio/mqtt_packet.hpp>

#include <string>
#include <string_view>

#include "properties.hpp"
#include "topic.hpp"
#include "wire.hpp"

namespace corio::mqtt {
namespace {

using wire::Reader;
using wire::Writer;

// ---- the fixed header ----

// PUBREL, SUBSCRIBE and UNSUBSCRIBE carry 0b0010 in the flags; every other packet but PUBLISH 0.
constexpr std::uint8_t fixed_flags(Type t) noexcept {
  return t == Type::pubrel || t == Type::subscribe || t == Type::unsubscribe ? 0x2 : 0x0;
}

constexpr std::uint8_t first_byte(Type t, std::uint8_t flags) noexcept {
  return static_cast<std::uint8_t>(static_cast<unsigned>(t) << 4 | flags);
}

// Checked in read_header already, to refuse a packet before its body is buffered.
std::error_code check_first(std::uint8_t first) noexcept {
  auto t = static_cast<Type>(first >> 4);
  std::uint8_t flags = first & 0x0F;
  if (first >> 4 == 0) return Errc::bad_type;
  if (t == Type::publish) {
    unsigned qos = flags >> 1 & 3;
    if (qos == 3) return Errc::protocol_error;
    if (qos == 0 && (flags & 0x8)) return Errc::protocol_error;  // DUP on QoS 0 [MQTT-3.3.1-2]
    return {};
  }
  return flags == fixed_flags(t) ? std::error_code{} : Errc::malformed;
}

// ---- the rules both directions apply ----

bool valid_suback_311(std::uint8_t code) noexcept { return code <= 2 || code == 0x80; }

// A PUBLISH (or will) topic is a name; MQTT 5 lets a PUBLISH leave it empty for a topic alias.
bool valid_publish_topic(std::string_view topic, Version v, const Properties& p) noexcept {
  if (topic.empty()) return v == Version::v50 && p.find(PropertyId::topic_alias);
  return topic::valid_name(topic);
}

// ---- decoding ----

std::error_code read_string(Reader& r, std::string& s) {
  std::string_view v;
  if (!r.field(v)) return Errc::malformed;
  if (!wire::valid_utf8(v)) return Errc::bad_utf8;
  s.assign(v);
  return {};
}

std::error_code read_binary(Reader& r, std::string& s) {
  std::string_view v;
  if (!r.field(v)) return Errc::malformed;
  s.assign(v);
  return {};
}

// A packet identifier: never 0 [MQTT-2.3.1-1].
std::error_code read_packet_id(Reader& r, std::uint16_t& id) {
  if (!r.u16(id)) return Errc::malformed;
  return id ? std::error_code{} : Errc::protocol_error;
}

std::error_code read_props(Reader& r, Version v, std::uint32_t where, Properties& p) {
  return v == Version::v50 ? props::read(r, where, p) : std::error_code{};
}

// A topic filter in SUBSCRIBE or UNSUBSCRIBE.
std::error_code read_filter(Reader& r, std::string& f) {
  if (auto ec = read_string(r, f)) return ec;
  return topic::valid_filter(f) ? std::error_code{} : Errc::protocol_error;
}

// CONNECT follows its own protocol level, not the version the caller expects: a server learns
// the version from it.
std::error_code decode_connect(Reader& r, Connect& c) {
  std::string_view name;
  std::uint8_t level, flags;
  if (!r.field(name) || !r.u8(level) || !r.u8(flags) || !r.u16(c.keep_alive)) return Errc::malformed;
  if (name != "MQTT" || (level != 4 && level != 5)) return Errc::protocol_error;
  c.version = static_cast<Version>(level);
  bool will = flags & 0x04, password = flags & 0x40, username = flags & 0x80;
  auto will_qos = static_cast<std::uint8_t>(flags >> 3 & 3);
  bool will_retain = flags & 0x20;
  if (flags & 0x01) return Errc::malformed;  // reserved [MQTT-3.1.2-3]
  if (!will && (will_qos || will_retain)) return Errc::malformed;
  if (will_qos == 3) return Errc::protocol_error;
  if (c.version == Version::v311 && password && !username) return Errc::protocol_error;  // [MQTT-3.1.2-22]
  c.clean = flags & 0x02;
  std::error_code ec;
  if ((ec = read_props(r, c.version, props::section(Type::connect), c.props))) return ec;
  if ((ec = read_string(r, c.client_id))) return ec;
  if (will) {
    Will& w = c.will.emplace();
    w.qos = will_qos;
    w.retain = will_retain;
    if ((ec = read_props(r, c.version, props::will_section, w.props))) return ec;
    if ((ec = read_string(r, w.topic))) return ec;
    if (w.topic.empty() || !topic::valid_name(w.topic)) return Errc::protocol_error;
    if ((ec = read_binary(r, w.payload))) return ec;
  }
  if (username && (ec = read_string(r, c.username.emplace()))) return ec;
  if (password && (ec = read_binary(r, c.password.emplace()))) return ec;
  return {};
}

std::error_code decode_connack(Reader& r, Version v, Connack& c) {
  std::uint8_t flags;
  if (!r.u8(flags) || !r.u8(c.reason)) return Errc::malformed;
  if (flags & 0xFE) return Errc::malformed;
  c.session_present = flags & 1;
  if (v == Version::v311 && c.reason > 5) return Errc::protocol_error;
  if (c.session_present && c.reason) return Errc::protocol_error;  // [MQTT-3.2.2-4], [MQTT-3.2.2-6]
  return read_props(r, v, props::section(Type::connack), c.props);
}

std::error_code decode_publish(Reader& r, std::uint8_t flags, Version v, Publish& p) {
  p.dup = flags & 0x8;
  p.qos = flags >> 1 & 3;
  p.retain = flags & 0x1;
  std::error_code ec;
  if ((ec = read_string(r, p.topic))) return ec;
  if (p.qos && (ec = read_packet_id(r, p.packet_id))) return ec;
  if ((ec = read_props(r, v, props::section(Type::publish), p.props))) return ec;
  if (!valid_publish_topic(p.topic, v, p.props)) return Errc::protocol_error;
  p.payload = r.rest();
  return {};
}

// PUBACK, PUBREC, PUBREL, PUBCOMP. In 5.0 the reason and the properties may be left out
// (reason 0, none), the properties alone too.
std::error_code decode_ack(Reader& r, Type t, Version v, Ack& a) {
  a.type = t;
  if (auto ec = read_packet_id(r, a.packet_id)) return ec;
  if (v == Version::v311 || r.done()) return {};
  r.u8(a.reason);
  return r.done() ? std::error_code{} : props::read(r, props::section(t), a.props);
}

std::error_code decode_subscribe(Reader& r, Version v, Subscribe& s) {
  std::error_code ec;
  if ((ec = read_packet_id(r, s.packet_id))) return ec;
  if ((ec = read_props(r, v, props::section(Type::subscribe), s.props))) return ec;
  while (!r.done()) {
    Subscription& sub = s.subscriptions.emplace_back();
    std::uint8_t o;
    if ((ec = read_filter(r, sub.filter))) return ec;
    if (!r.u8(o)) return Errc::malformed;
    if (o & (v == Version::v311 ? 0xFC : 0xC0)) return Errc::malformed;  // reserved bits
    sub.qos = o & 3;
    sub.no_local = o & 0x04;
    sub.retain_as_published = o & 0x08;
    sub.retain_handling = o >> 4 & 3;
    if (sub.qos == 3 || sub.retain_handling == 3) return Errc::protocol_error;
  }
  return s.subscriptions.empty() ? Errc::protocol_error : std::error_code{};  // [MQTT-3.8.3-3]
}

// SUBACK, and UNSUBACK (5.0: a reason per filter; 3.1.1: the packet id alone).
std::error_code decode_suback(Reader& r, Type t, Version v, SubAck& s) {
  s.type = t;
  std::error_code ec;
  if ((ec = read_packet_id(r, s.packet_id))) return ec;
  if ((ec = read_props(r, v, props::section(t), s.props))) return ec;
  if (v == Version::v311 && t == Type::unsuback) return {};
  std::string_view codes = r.rest();
  if (codes.empty()) return Errc::protocol_error;
  s.reasons.assign(codes.begin(), codes.end());
  if (v == Version::v311) {
    for (std::uint8_t c : s.reasons)
      if (!valid_suback_311(c)) return Errc::protocol_error;
  }
  return {};
}

std::error_code decode_unsubscribe(Reader& r, Version v, Unsubscribe& u) {
  std::error_code ec;
  if ((ec = read_packet_id(r, u.packet_id))) return ec;
  if ((ec = read_props(r, v, props::section(Type::unsubscribe), u.props))) return ec;
  while (!r.done()) {
    if ((ec = read_filter(r, u.filters.emplace_back()))) return ec;
  }
  return u.filters.empty() ? Errc::protocol_error : std::error_code{};  // [MQTT-3.10.3-2]
}

// DISCONNECT and AUTH: 3.1.1's DISCONNECT is empty; in 5.0 the reason and properties may be
// left out (reason 0, none), the properties alone too.
std::error_code decode_disconnect(Reader& r, Type t, Version v, Disconnect& d) {
  d.type = t;
  if (v == Version::v311 || r.done()) return {};
  r.u8(d.reason);
  return r.done() ? std::error_code{} : props::read(r, props::section(t), d.props);
}

// ---- encoding: valid() says whether a packet can be sent, write() writes its body ----

bool string_ok(std::string_view s) noexcept { return s.size() <= wire::max_field && wire::valid_utf8(s); }
bool binary_ok(std::string_view s) noexcept { return s.size() <= wire::max_field; }
bool filter_ok(std::string_view f) noexcept { return string_ok(f) && topic::valid_filter(f); }

// 3.1.1 has no properties: a list to send there is a mistake, not something to drop.
bool props_ok(const Properties& p, Version v, std::uint32_t where) {
  return v == Version::v311 ? p.empty() : !props::check(p, where);
}

void write_props(Writer& w, Version v, const Properties& p) {
  if (v == Version::v50) props::write(w, p);
}

bool valid(const Connect& c, Version) {
  if (c.version != Version::v311 && c.version != Version::v50) return false;
  if (!string_ok(c.client_id) || !props_ok(c.props, c.version, props::section(Type::connect))) return false;
  if (c.username && !string_ok(*c.username)) return false;
  if (c.password && !binary_ok(*c.password)) return false;
  if (c.version == Version::v311 && c.password && !c.username) return false;
  if (const auto& w = c.will) {
    if (w->qos > 2 || w->topic.empty() || !string_ok(w->topic) || !topic::valid_name(w->topic)) return false;
    if (!binary_ok(w->payload) || !props_ok(w->props, c.version, props::will_section)) return false;
  }
  return true;
}
std::uint8_t first_byte(const Connect&) { return first_byte(Type::connect, 0); }
void write(Writer& w, const Connect& c, Version) {
  std::uint8_t flags = c.clean ? 0x02 : 0;
  if (c.will) flags |= static_cast<std::uint8_t>(0x04 | c.will->qos << 3 | (c.will->retain ? 0x20 : 0));
  if (c.password) flags |= 0x40;
  if (c.username) flags |= 0x80;
  w.field("MQTT");
  w.u8(static_cast<std::uint8_t>(c.version));
  w.u8(flags);
  w.u16(c.keep_alive);
  write_props(w, c.version, c.props);
  w.field(c.client_id);
  if (c.will) {
    write_props(w, c.version, c.will->props);
    w.field(c.will->topic);
    w.field(c.will->payload);
  }
  if (c.username) w.field(*c.username);
  if (c.password) w.field(*c.password);
}

bool valid(const Connack& c, Version v) {
  if (v == Version::v311 && c.reason > 5) return false;
  if (c.session_present && c.reason) return false;
  return props_ok(c.props, v, props::section(Type::connack));
}
std::uint8_t first_byte(const Connack&) { return first_byte(Type::connack, 0); }
void write(Writer& w, const Connack& c, Version v) {
  w.u8(c.session_present ? 1 : 0);
  w.u8(c.reason);
  write_props(w, v, c.props);
}

// A packet id with QoS 0 is ignored: the field exists only for QoS 1 and 2.
bool valid(const Publish& p, Version v) {
  if (p.qos > 2 || (p.qos == 0 && p.dup) || (p.qos > 0 && p.packet_id == 0)) return false;
  if (!string_ok(p.topic) || !valid_publish_topic(p.topic, v, p.props)) return false;
  return props_ok(p.props, v, props::section(Type::publish));
}
std::uint8_t first_byte(const Publish& p) {
  return first_byte(Type::publish, static_cast<std::uint8_t>((p.dup ? 0x8 : 0) | p.qos << 1 | (p.retain ? 1 : 0)));
}
void write(Writer& w, const Publish& p, Version v) {
  w.field(p.topic);
  if (p.qos) w.u16(p.packet_id);
  write_props(w, v, p.props);
  w.bytes(p.payload);
}

bool valid(const Ack& a, Version v) {
  if (a.type != Type::puback && a.type != Type::pubrec && a.type != Type::pubrel && a.type != Type::pubcomp)
    return false;
  if (a.packet_id == 0 || (v == Version::v311 && a.reason)) return false;
  return props_ok(a.props, v, props::section(a.type));
}
std::uint8_t first_byte(const Ack& a) { return first_byte(a.type, fixed_flags(a.type)); }
// 5.0: the shortest form that says it (no reason for a success without properties).
void write(Writer& w, const Ack& a, Version v) {
  w.u16(a.packet_id);
  if (v == Version::v311 || (a.reason == 0 && a.props.empty())) return;
  w.u8(a.reason);
  if (!a.props.empty()) props::write(w, a.props);
}

bool valid(const Subscribe& s, Version v) {
  if (s.packet_id == 0 || s.subscriptions.empty()) return false;
  for (const Subscription& sub : s.subscriptions) {
    if (!filter_ok(sub.filter) || sub.qos > 2 || sub.retain_handling > 2) return false;
    if (v == Version::v311 && (sub.no_local || sub.retain_as_published || sub.retain_handling)) return false;
  }
  return props_ok(s.props, v, props::section(Type::subscribe));
}
std::uint8_t first_byte(const Subscribe&) { return first_byte(Type::subscribe, fixed_flags(Type::subscribe)); }
void write(Writer& w, const Subscribe& s, Version v) {
  w.u16(s.packet_id);
  write_props(w, v, s.props);
  for (const Subscription& sub : s.subscriptions) {
    w.field(sub.filter);
    w.u8(static_cast<std::uint8_t>(sub.qos | (sub.no_local ? 0x04 : 0) | (sub.retain_as_published ? 0x08 : 0) |
                                   sub.retain_handling << 4));
  }
}

bool valid(const SubAck& s, Version v) {
  if ((s.type != Type::suback && s.type != Type::unsuback) || s.packet_id == 0) return false;
  if (v == Version::v311 && s.type == Type::unsuback) {
    if (!s.reasons.empty()) return false;
  } else if (s.reasons.empty()) {
    return false;
  }
  if (v == Version::v311) {
    for (std::uint8_t c : s.reasons)
      if (!valid_suback_311(c)) return false;
  }
  return props_ok(s.props, v, props::section(s.type));
}
std::uint8_t first_byte(const SubAck& s) { return first_byte(s.type, 0); }
void write(Writer& w, const SubAck& s, Version v) {
  w.u16(s.packet_id);
  write_props(w, v, s.props);
  for (std::uint8_t c : s.reasons) w.u8(c);
}

bool valid(const Unsubscribe& u, Version v) {
  if (u.packet_id == 0 || u.filters.empty()) return false;
  for (const std::string& f : u.filters)
    if (!filter_ok(f)) return false;
  return props_ok(u.props, v, props::section(Type::unsubscribe));
}
std::uint8_t first_byte(const Unsubscribe&) { return first_byte(Type::unsubscribe, fixed_flags(Type::unsubscribe)); }
void write(Writer& w, const Unsubscribe& u, Version v) {
  w.u16(u.packet_id);
  write_props(w, v, u.props);
  for (const std::string& f : u.filters) w.field(f);
}

bool valid(const Ping& p, Version) { return p.type == Type::pingreq || p.type == Type::pingresp; }
std::uint8_t first_byte(const Ping& p) { return first_byte(p.type, 0); }
void write(Writer&, const Ping&, Version) {}

bool valid(const Disconnect& d, Version v) {
  if (d.type != Type::disconnect && (d.type != Type::auth || v == Version::v311)) return false;
  if (v == Version::v311 && d.reason) return false;
  return props_ok(d.props, v, props::section(d.type));
}
std::uint8_t first_byte(const Disconnect& d) { return first_byte(d.type, 0); }
void write(Writer& w, const Disconnect& d, Version v) {
  if (v == Version::v311 || (d.reason == 0 && d.props.empty())) return;
  w.u8(d.reason);
  if (!d.props.empty()) props::write(w, d.props);
}

}  // namespace

const char* type_name(Type t) noexcept {
  static constexpr const char* names[] = {"RESERVED",  "CONNECT", "CONNACK",  "PUBLISH",  "PUBACK",
                                          "PUBREC",    "PUBREL",  "PUBCOMP",  "SUBSCRIBE", "SUBACK",
                                          "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT",
                                          "AUTH"};
  auto i = static_cast<std::size_t>(t);
  return i < std::size(names) ? names[i] : "UNKNOWN";
}

Type type_of(const Packet& p) noexcept {
  struct Visitor {
    Type operator()(const Connect&) const noexcept { return Type::connect; }
    Type operator()(const Connack&) const noexcept { return Type::connack; }
    Type operator()(const Publish&) const noexcept { return Type::publish; }
    Type operator()(const Ack& a) const noexcept { return a.type; }
    Type operator()(const Subscribe&) const noexcept { return Type::subscribe; }
    Type operator()(const SubAck& s) const noexcept { return s.type; }
    Type operator()(const Unsubscribe&) const noexcept { return Type::unsubscribe; }
    Type operator()(const Ping& p) const noexcept { return p.type; }
    Type operator()(const Disconnect& d) const noexcept { return d.type; }
  };
  return std::visit(Visitor{}, p);
}

Result<Header> read_header(std::string_view bytes, std::uint32_t max_packet_size, std::size_t& need) {
  need = 0;
  if (bytes.empty()) {
    need = 2;
    return {};
  }
  Header h;
  h.first = static_cast<std::uint8_t>(bytes[0]);
  if (auto ec = check_first(h.first)) return {ec};
  std::size_t used = 0;
  switch (wire::parse_varint(bytes.substr(1), h.remaining, used)) {
    case wire::Varint::incomplete: need = bytes.size() + 1; return {};
    case wire::Varint::malformed: return {Errc::malformed};
    case wire::Varint::ok: break;
  }
  h.size = 1 + used;
  if (h.size + std::uint64_t{h.remaining} > max_packet_size) return {Errc::too_large};
  return {{}, h};
}

std::error_code decode(const Header& h, std::string_view body, Version v, Packet& out) {
  if (v != Version::v311 && v != Version::v50) return Errc::invalid_argument;
  if (auto ec = check_first(h.first)) return ec;
  if (body.size() != h.remaining) return Errc::malformed;
  Type t = h.type();
  if (t == Type::auth && v == Version::v311) return Errc::bad_type;
  Reader r(body);
  Packet p;
  std::error_code ec;
  switch (t) {
    case Type::connect: ec = decode_connect(r, p.emplace<Connect>()); break;
    case Type::connack: ec = decode_connack(r, v, p.emplace<Connack>()); break;
    case Type::publish: ec = decode_publish(r, h.first & 0x0F, v, p.emplace<Publish>()); break;
    case Type::puback:
    case Type::pubrec:
    case Type::pubrel:
    case Type::pubcomp: ec = decode_ack(r, t, v, p.emplace<Ack>()); break;
    case Type::subscribe: ec = decode_subscribe(r, v, p.emplace<Subscribe>()); break;
    case Type::suback:
    case Type::unsuback: ec = decode_suback(r, t, v, p.emplace<SubAck>()); break;
    case Type::unsubscribe: ec = decode_unsubscribe(r, v, p.emplace<Unsubscribe>()); break;
    case Type::pingreq:
    case Type::pingresp: p.emplace<Ping>().type = t; break;
    case Type::disconnect:
    case Type::auth: ec = decode_disconnect(r, t, v, p.emplace<Disconnect>()); break;
  }
  if (!ec && !r.done()) ec = Errc::malformed;  // bytes left over: a length that lied
  if (!ec) out = std::move(p);
  return ec;
}

std::error_code encode(const Packet& p, Version v, std::string& out) {
  if (v != Version::v311 && v != Version::v50) return Errc::invalid_argument;
  return std::visit(
      [&](const auto& x) -> std::error_code {
        if (!valid(x, v)) return Errc::invalid_argument;
        Writer count;
        write(count, x, v);
        if (count.size() > wire::max_varint) return Errc::invalid_argument;  // a payload too big
        auto remaining = static_cast<std::uint32_t>(count.size());
        out.reserve(out.size() + 1 + wire::varint_size(remaining) + remaining);
        Writer w(&out);
        w.u8(first_byte(x));
        w.varint(remaining);
        write(w, x, v);
        return {};
      },
      p);
}

}  // namespace corio::mqtt
