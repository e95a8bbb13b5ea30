// MQTT 3.1.1 and 5.0 control packets, and their codec: a pure encoder/decoder with no I/O
// (it can be fuzzed). A packet on the wire is a fixed header (type and flags, then the
// remaining length as a variable byte integer) and its body:
//
//   std::size_t need;
//   auto h = corio::mqtt::read_header(bytes, max_packet_size, need);  // before the body is read
//   corio::mqtt::Packet p;
//   if (auto ec = corio::mqtt::decode(h.value, body, Version::v50, p)) ...;
//   std::string out;
//   corio::mqtt::encode(corio::mqtt::Publish{...}, Version::v50, out);
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <corio/result.hpp>

namespace corio::mqtt {

enum class Version : std::uint8_t { v311 = 4, v50 = 5 };

enum class Type : std::uint8_t {
  connect = 1, connack, publish, puback, pubrec, pubrel, pubcomp,
  subscribe, suback, unsubscribe, unsuback, pingreq, pingresp, disconnect, auth
};
const char* type_name(Type t) noexcept;  // "CONNECT" ...

// The codec's failures; mqtt_category() names them.
enum class Errc {
  malformed = 1,        // not a valid encoding: a bad length, a bad flag, a truncated field
  too_large,            // remaining length over the maximum packet size
  bad_type,             // packet type 0, or AUTH in 3.1.1
  bad_property,         // an unknown property, one not allowed in this packet, a duplicate
  protocol_error,       // valid bytes that break a rule (QoS 3, packet id 0, empty topic filter list)
  bad_utf8,             // a string that is not well-formed UTF-8, or holds U+0000
  invalid_argument,     // encode: a value that cannot be sent (a topic over 65535 bytes, QoS 3)
};
const std::error_category& mqtt_category() noexcept;
inline std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), mqtt_category()}; }

// MQTT 5 properties, in wire order. Each identifier has one value type (property_kind).
enum class PropertyId : std::uint8_t {
  payload_format_indicator = 0x01, message_expiry_interval = 0x02, content_type = 0x03,
  response_topic = 0x08, correlation_data = 0x09, subscription_identifier = 0x0B,
  session_expiry_interval = 0x11, assigned_client_identifier = 0x12, server_keep_alive = 0x13,
  authentication_method = 0x15, authentication_data = 0x16, request_problem_information = 0x17,
  will_delay_interval = 0x18, request_response_information = 0x19, response_information = 0x1A,
  server_reference = 0x1C, reason_string = 0x1F, receive_maximum = 0x21, topic_alias_maximum = 0x22,
  topic_alias = 0x23, maximum_qos = 0x24, retain_available = 0x25, user_property = 0x26,
  maximum_packet_size = 0x27, wildcard_subscription_available = 0x28,
  subscription_identifier_available = 0x29, shared_subscription_available = 0x2A,
};
enum class PropertyKind : std::uint8_t { none, byte, u16, u32, varint, string, binary, pair };
PropertyKind property_kind(std::uint8_t id) noexcept;  // none: unknown identifier
const char* property_name(std::uint8_t id) noexcept;   // "session_expiry_interval"; nullptr: unknown
std::optional<std::uint8_t> property_id(std::string_view name) noexcept;

struct Property {
  PropertyId id;
  std::uint32_t number = 0;  // byte, u16, u32, varint
  std::string text;          // string, binary; a user property's name
  std::string value;         // a user property's value
  bool operator==(const Property&) const = default;
};
struct Properties {
  std::vector<Property> list;
  const Property* find(PropertyId id) const noexcept;  // the first
  std::optional<std::uint32_t> number(PropertyId id) const noexcept;
  void set(PropertyId id, std::uint32_t n);             // replaces
  void set(PropertyId id, std::string s);
  void add_user(std::string name, std::string value);
  bool empty() const noexcept { return list.empty(); }
  bool operator==(const Properties&) const = default;
};

struct Will {
  std::string topic, payload;
  std::uint8_t qos = 0;
  bool retain = false;
  Properties props;
  bool operator==(const Will&) const = default;
};
struct Connect {
  Version version = Version::v311;  // encoded as the protocol level
  bool clean = true;                // clean session (3.1.1) / clean start (5.0)
  std::uint16_t keep_alive = 60;
  std::string client_id;
  std::optional<std::string> username, password;
  std::optional<Will> will;
  Properties props;
  bool operator==(const Connect&) const = default;
};
struct Connack {
  bool session_present = false;
  std::uint8_t reason = 0;  // 3.1.1: the return code (0..5); 5.0: the reason code
  Properties props;
  bool operator==(const Connack&) const = default;
};
struct Publish {
  std::string topic, payload;
  std::uint8_t qos = 0;
  bool retain = false, dup = false;
  std::uint16_t packet_id = 0;  // QoS 1 and 2 only
  Properties props;
  bool operator==(const Publish&) const = default;
};
// PUBACK, PUBREC, PUBREL, PUBCOMP: a packet id and (5.0) a reason; `type` says which.
struct Ack {
  Type type = Type::puback;
  std::uint16_t packet_id = 0;
  std::uint8_t reason = 0;
  Properties props;
  bool operator==(const Ack&) const = default;
};
struct Subscription {
  std::string filter;
  std::uint8_t qos = 0;
  bool no_local = false, retain_as_published = false;  // 5.0
  std::uint8_t retain_handling = 0;                     // 5.0: 0..2
  bool operator==(const Subscription&) const = default;
};
struct Subscribe {
  std::uint16_t packet_id = 0;
  std::vector<Subscription> subscriptions;
  Properties props;
  bool operator==(const Subscribe&) const = default;
};
// SUBACK and UNSUBACK: one reason per filter (3.1.1's UNSUBACK has none).
struct SubAck {
  Type type = Type::suback;
  std::uint16_t packet_id = 0;
  std::vector<std::uint8_t> reasons;
  Properties props;
  bool operator==(const SubAck&) const = default;
};
struct Unsubscribe {
  std::uint16_t packet_id = 0;
  std::vector<std::string> filters;
  Properties props;
  bool operator==(const Unsubscribe&) const = default;
};
// PINGREQ, PINGRESP: nothing but the type.
struct Ping {
  Type type = Type::pingreq;
  bool operator==(const Ping&) const = default;
};
// DISCONNECT and AUTH (5.0): a reason and properties (3.1.1's DISCONNECT has neither).
struct Disconnect {
  Type type = Type::disconnect;
  std::uint8_t reason = 0;
  Properties props;
  bool operator==(const Disconnect&) const = default;
};

using Packet = std::variant<Connect, Connack, Publish, Ack, Subscribe, SubAck, Unsubscribe, Ping, Disconnect>;
Type type_of(const Packet& p) noexcept;

// The fixed header: the first byte (type << 4 | flags) and the remaining length.
struct Header {
  std::uint8_t first = 0;
  std::uint32_t remaining = 0;
  std::size_t size = 0;  // bytes of the fixed header itself (2..5)
  Type type() const noexcept { return static_cast<Type>(first >> 4); }
};
// The fixed header at the start of `bytes`. Incomplete: `need` says how many bytes in all
// are wanted before it can be read (no error); it is 0 once the header is read. A remaining length over max_packet_size
// (header included, as MQTT 5 counts it) is too_large here, before the body is buffered.
Result<Header> read_header(std::string_view bytes, std::uint32_t max_packet_size, std::size_t& need);

// The packet whose fixed header is h and body is exactly `body` (h.remaining bytes).
// Packets a server sends and a client sends both decode; what a client must never receive
// (CONNECT, SUBSCRIBE ...) is the client's to refuse.
std::error_code decode(const Header& h, std::string_view body, Version v, Packet& out);

// Appends p's wire form to out (out unchanged on an error).
std::error_code encode(const Packet& p, Version v, std::string& out);

}  // namespace corio::mqtt

template <>
struct std::is_error_code_enum<corio::mqtt::Errc> : std::true_type {};
