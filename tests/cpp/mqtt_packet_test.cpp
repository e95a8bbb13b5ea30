// The MQTT 3.1.1 / 5.0 codec: every packet type read back equal in both versions, the exact
// bytes of packets written from the specifications, the remaining length's boundaries, and
// what a decoder refuses (with which error) and an encoder will not write.
#include <corio/mqtt_packet.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace corio::mqtt;
using V = Version;

// ---- building wire bytes by hand, independently of the codec ----

// "10 1B 00 04" -> the bytes
std::string hex(std::string_view h) {
  std::string out;
  for (std::size_t i = 0; i < h.size();) {
    if (h[i] == ' ') {
      ++i;
      continue;
    }
    out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
    i += 2;
  }
  return out;
}

std::string to_hex(std::string_view s) {
  static const char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (!out.empty()) out += ' ';
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string varint(std::uint32_t n) {
  std::string out;
  do {
    unsigned char d = n & 0x7F;
    n >>= 7;
    out.push_back(static_cast<char>(n ? d | 0x80 : d));
  } while (n);
  return out;
}

std::string u16(unsigned n) { return {static_cast<char>(n >> 8), static_cast<char>(n & 0xFF)}; }
std::string str(std::string_view s) { return u16(static_cast<unsigned>(s.size())) + std::string(s); }
std::string props(std::string_view body) { return varint(static_cast<std::uint32_t>(body.size())) + std::string(body); }
std::string frame(unsigned first, std::string_view body) {
  return std::string(1, static_cast<char>(first)) + varint(static_cast<std::uint32_t>(body.size())) + std::string(body);
}

constexpr std::uint32_t no_limit = 268435460;

// read_header then decode, over one whole packet.
std::error_code parse(std::string_view wire, V v, Packet& p, std::uint32_t max = no_limit) {
  std::size_t need = 0;
  auto h = read_header(wire, max, need);
  if (h.error) return h.error;
  EXPECT_EQ(need, 0u) << "incomplete header in " << to_hex(wire);
  return decode(h.value, wire.substr(h.value.size), v, p);
}
std::error_code parse(std::string_view wire, V v) {
  Packet p;
  return parse(wire, v, p);
}

std::string encoded(const Packet& p, V v) {
  std::string out;
  std::error_code ec = encode(p, v, out);
  EXPECT_FALSE(ec) << type_name(type_of(p)) << ": " << ec.message();
  return out;
}

// encode, then read back: the same packet.
void expect_round_trip(const Packet& p, V v) {
  std::string wire = encoded(p, v);
  Packet q;
  std::error_code ec = parse(wire, v, q);
  ASSERT_FALSE(ec) << type_name(type_of(p)) << ": " << ec.message() << " in " << to_hex(wire);
  EXPECT_TRUE(p == q) << type_name(type_of(p)) << " read back differently from " << to_hex(wire);
  EXPECT_EQ(type_of(q), type_of(p));
}

// An encoding refused leaves out as it was.
void expect_refused(const Packet& p, V v) {
  std::string out = "before";
  EXPECT_EQ(encode(p, v, out), Errc::invalid_argument) << type_name(type_of(p));
  EXPECT_EQ(out, "before");
}

Publish publish(std::string topic, std::string payload = "x") {
  Publish p;
  p.topic = std::move(topic);
  p.payload = std::move(payload);
  return p;
}

Properties user_props() {
  Properties p;
  p.add_user("k", "v");
  p.add_user("k", "v2");
  return p;
}

// ---- every packet type, both versions ----

TEST(MqttCodec, EveryPacketTypeRoundTrips311) {
  Connect c;
  c.client_id = "client";
  c.clean = false;
  c.keep_alive = 0;
  c.username = "user";
  c.password = std::string("p\0w", 3);
  c.will = Will{"will/topic", "gone", 2, true, {}};
  expect_round_trip(c, V::v311);
  expect_round_trip(Connect{}, V::v311);
  for (std::uint8_t rc = 0; rc <= 5; ++rc) expect_round_trip(Connack{false, rc, {}}, V::v311);
  expect_round_trip(Connack{true, 0, {}}, V::v311);
  for (std::uint8_t qos = 0; qos <= 2; ++qos) {
    Publish p = publish("a/b/c", std::string(300, 'z'));
    p.qos = qos;
    p.retain = true;
    p.dup = qos > 0;
    p.packet_id = qos ? 65535 : 0;
    expect_round_trip(p, V::v311);
  }
  expect_round_trip(publish("t", ""), V::v311);
  for (Type t : {Type::puback, Type::pubrec, Type::pubrel, Type::pubcomp}) expect_round_trip(Ack{t, 9, 0, {}}, V::v311);
  expect_round_trip(Subscribe{1, {{"a/+", 0}, {"#", 1}, {"x/y", 2}}, {}}, V::v311);
  expect_round_trip(SubAck{Type::suback, 1, {0, 1, 2, 0x80}, {}}, V::v311);
  expect_round_trip(SubAck{Type::unsuback, 1, {}, {}}, V::v311);
  expect_round_trip(Unsubscribe{2, {"a/+", "#"}, {}}, V::v311);
  expect_round_trip(Ping{Type::pingreq}, V::v311);
  expect_round_trip(Ping{Type::pingresp}, V::v311);
  expect_round_trip(Disconnect{}, V::v311);
}

TEST(MqttCodec, EveryPacketTypeRoundTrips50) {
  Connect c;
  c.version = V::v50;
  c.client_id = "c5";
  c.password = "only a password";  // 5.0 allows it without a user name
  c.props.set(PropertyId::session_expiry_interval, 3600);
  c.props.set(PropertyId::receive_maximum, 10);
  c.props.set(PropertyId::authentication_method, "SCRAM-SHA-1");
  c.props.set(PropertyId::authentication_data, std::string("\0\1\2", 3));
  c.props.add_user("a", "b");
  Will w{"w", "payload", 1, false, {}};
  w.props.set(PropertyId::will_delay_interval, 30);
  w.props.set(PropertyId::payload_format_indicator, 1);
  w.props.set(PropertyId::content_type, "text/plain");
  w.props.set(PropertyId::correlation_data, "id");
  c.will = w;
  expect_round_trip(c, V::v50);

  Connack ack{true, 0, {}};
  ack.props.set(PropertyId::assigned_client_identifier, "auto-1");
  ack.props.set(PropertyId::server_keep_alive, 20);
  ack.props.set(PropertyId::maximum_qos, 1);
  ack.props.set(PropertyId::maximum_packet_size, 1 << 20);
  ack.props.set(PropertyId::topic_alias_maximum, 5);
  ack.props.set(PropertyId::retain_available, 0);
  ack.props.set(PropertyId::shared_subscription_available, 1);
  ack.props.set(PropertyId::server_reference, "other");
  expect_round_trip(ack, V::v50);
  expect_round_trip(Connack{false, 0x87, {}}, V::v50);

  Publish p = publish("a/b", "payload");
  p.qos = 2;
  p.packet_id = 3;
  p.props.set(PropertyId::message_expiry_interval, 60);
  p.props.set(PropertyId::response_topic, "reply/here");
  p.props.list.push_back({PropertyId::subscription_identifier, 268435455, {}, {}});
  p.props.list.push_back({PropertyId::subscription_identifier, 1, {}, {}});  // one per matching subscription
  p.props.add_user("k", "v");
  expect_round_trip(p, V::v50);
  Publish aliased = publish("", "by alias");
  aliased.props.set(PropertyId::topic_alias, 7);
  expect_round_trip(aliased, V::v50);

  for (Type t : {Type::puback, Type::pubrec, Type::pubrel, Type::pubcomp}) {
    expect_round_trip(Ack{t, 1, 0, {}}, V::v50);
    expect_round_trip(Ack{t, 1, 0x10, {}}, V::v50);
    Ack a{t, 1, 0x80, user_props()};
    a.props.set(PropertyId::reason_string, "why");
    expect_round_trip(a, V::v50);
  }
  Subscribe s{4, {{"a/#", 1, true, true, 2}, {"+/b", 0, false, false, 1}}, {}};
  s.props.set(PropertyId::subscription_identifier, 42);
  expect_round_trip(s, V::v50);
  expect_round_trip(SubAck{Type::suback, 4, {0, 1, 2, 0x80, 0x97}, user_props()}, V::v50);
  expect_round_trip(SubAck{Type::unsuback, 4, {0, 0x11}, {}}, V::v50);
  expect_round_trip(Unsubscribe{5, {"a", "b/+"}, user_props()}, V::v50);
  expect_round_trip(Ping{Type::pingreq}, V::v50);
  expect_round_trip(Ping{Type::pingresp}, V::v50);
  expect_round_trip(Disconnect{}, V::v50);
  expect_round_trip(Disconnect{Type::disconnect, 0x04, {}}, V::v50);
  Disconnect d{Type::disconnect, 0x8E, {}};
  d.props.set(PropertyId::session_expiry_interval, 0);
  d.props.set(PropertyId::reason_string, "taken over");
  expect_round_trip(d, V::v50);
  Disconnect auth{Type::auth, 0x18, {}};
  auth.props.set(PropertyId::authentication_method, "SCRAM-SHA-1");
  expect_round_trip(auth, V::v50);
  expect_round_trip(Disconnect{Type::auth, 0, {}}, V::v50);
}

// ---- exact bytes ----

TEST(MqttCodec, PingAndDisconnectAreTwoBytes) {
  EXPECT_EQ(to_hex(encoded(Ping{Type::pingreq}, V::v311)), "C0 00");
  EXPECT_EQ(to_hex(encoded(Ping{Type::pingresp}, V::v50)), "D0 00");
  EXPECT_EQ(to_hex(encoded(Disconnect{}, V::v311)), "E0 00");
  EXPECT_EQ(to_hex(encoded(Disconnect{}, V::v50)), "E0 00");  // success, no properties: nothing
  EXPECT_EQ(to_hex(encoded(Disconnect{Type::disconnect, 0x04, {}}, V::v50)), "E0 01 04");
}

// MQTT 3.1.1, 3.1.2.10 (figure 3.6's flags 0xCE and keep alive 10) with the payload of 3.1.3.
TEST(MqttCodec, Connect311WithWillUsernameAndPassword) {
  Connect c;
  c.client_id = "id";
  c.keep_alive = 10;
  c.will = Will{"w", "p", 1, false, {}};
  c.username = "u";
  c.password = "pw";
  std::string want = hex("10 1B 00 04 4D 51 54 54 04 CE 00 0A") + str("id") + str("w") + str("p") + str("u") + str("pw");
  EXPECT_EQ(to_hex(encoded(c, V::v311)), to_hex(want));
  Packet p;
  ASSERT_FALSE(parse(want, V::v311, p));
  EXPECT_TRUE(std::get<Connect>(p) == c);
}

TEST(MqttCodec, Publish50WithProperties) {
  Publish p = publish("a/b", "hi");
  p.qos = 1;
  p.packet_id = 10;
  p.props.set(PropertyId::payload_format_indicator, 1);
  p.props.set(PropertyId::message_expiry_interval, 60);
  p.props.add_user("k", "v");
  std::string want = hex("32 18 00 03 61 2F 62 00 0A 0E  01 01  02 00 00 00 3C  26 00 01 6B 00 01 76  68 69");
  EXPECT_EQ(to_hex(encoded(p, V::v50)), to_hex(want));
  Packet q;
  ASSERT_FALSE(parse(want, V::v50, q));
  EXPECT_TRUE(std::get<Publish>(q) == p);
  // 3.1.1 has no property length: the topic, the id, the payload.
  p.props = {};
  EXPECT_EQ(to_hex(encoded(p, V::v311)), "32 09 00 03 61 2F 62 00 0A 68 69");
}

TEST(MqttCodec, SubscribeOptionBits) {
  // 3.1.1, figure 3.23: "a/b" at QoS 1, "c/d" at QoS 2, packet id 10.
  Subscribe s{10, {{"a/b", 1}, {"c/d", 2}}, {}};
  EXPECT_EQ(to_hex(encoded(s, V::v311)), "82 0E 00 0A 00 03 61 2F 62 01 00 03 63 2F 64 02");
  // 5.0: QoS 1 | No Local 0x04 | Retain As Published 0x08 | Retain Handling 2 << 4, subscription id 2.
  Subscribe s5{1, {{"a/#", 1, true, true, 2}}, {}};
  s5.props.set(PropertyId::subscription_identifier, 2);
  std::string want = hex("82 0B 00 01 02 0B 02 00 03 61 2F 23 2D");
  EXPECT_EQ(to_hex(encoded(s5, V::v50)), to_hex(want));
  Packet p;
  ASSERT_FALSE(parse(want, V::v50, p));
  const Subscription& sub = std::get<Subscribe>(p).subscriptions.at(0);
  EXPECT_EQ(sub.qos, 1);
  EXPECT_TRUE(sub.no_local);
  EXPECT_TRUE(sub.retain_as_published);
  EXPECT_EQ(sub.retain_handling, 2);
}

TEST(MqttCodec, AcksInTheirShortestForm) {
  EXPECT_EQ(to_hex(encoded(Ack{Type::pubrel, 7, 0, {}}, V::v311)), "62 02 00 07");
  EXPECT_EQ(to_hex(encoded(Ack{Type::puback, 7, 0, {}}, V::v50)), "40 02 00 07");
  EXPECT_EQ(to_hex(encoded(Ack{Type::puback, 7, 0x10, {}}, V::v50)), "40 03 00 07 10");
  // Read: the short forms, and a reason followed by an empty property list.
  for (std::string wire : {hex("50 02 00 07"), hex("50 03 00 07 00"), hex("50 04 00 07 00 00")}) {
    Packet p;
    ASSERT_FALSE(parse(wire, V::v50, p)) << to_hex(wire);
    EXPECT_TRUE(std::get<Ack>(p) == (Ack{Type::pubrec, 7, 0, {}})) << to_hex(wire);
  }
  // 3.1.1: the packet id alone; SUBACK with a failure.
  EXPECT_EQ(to_hex(encoded(SubAck{Type::suback, 10, {0, 2, 0x80}, {}}, V::v311)), "90 05 00 0A 00 02 80");
  EXPECT_EQ(to_hex(encoded(SubAck{Type::unsuback, 10, {}, {}}, V::v311)), "B0 02 00 0A");
  EXPECT_EQ(parse(hex("40 03 00 07 10"), V::v311), Errc::malformed);
}

// ---- the remaining length ----

TEST(MqttCodec, RemainingLengthBoundaries) {
  struct Case {
    std::uint32_t n;
    const char* bytes;
  } cases[] = {{0, "00"},
               {127, "7F"},
               {128, "80 01"},
               {16383, "FF 7F"},
               {16384, "80 80 01"},
               {2097151, "FF FF 7F"},
               {2097152, "80 80 80 01"},
               {268435455, "FF FF FF 7F"}};
  for (const Case& c : cases) {
    std::string header = "\x30" + hex(c.bytes);
    std::size_t need = 9;
    auto h = read_header(header, no_limit, need);
    ASSERT_FALSE(h.error) << c.bytes;
    EXPECT_EQ(need, 0u);
    EXPECT_EQ(h.value.remaining, c.n);
    EXPECT_EQ(h.value.size, header.size());
    EXPECT_EQ(h.value.type(), Type::publish);
    if (c.n < 3 || c.n > 2097152) continue;
    // Written: a PUBLISH of that remaining length (topic "t": 3 bytes before the payload).
    std::string wire = encoded(publish("t", std::string(c.n - 3, 'p')), V::v311);
    EXPECT_EQ(to_hex(wire.substr(0, header.size())), to_hex(header));
    EXPECT_EQ(wire.size(), header.size() + c.n);
  }
}

TEST(MqttCodec, RemainingLengthMalformed) {
  std::size_t need = 9;
  // A fifth byte: refused as soon as the fourth says one follows.
  for (const char* h : {"30 FF FF FF FF 01", "30 FF FF FF FF", "30 80 80 80 80"}) {
    EXPECT_EQ(read_header(hex(h), no_limit, need).error, Errc::malformed) << h;
    EXPECT_EQ(need, 0u);
  }
  // Longer than needed: MQTT 5 (1.5.5) requires the shortest form; refused in both versions.
  for (const char* h : {"C0 80 00", "30 FF 80 00", "30 80 80 80 00", "30 81 00"})
    EXPECT_EQ(read_header(hex(h), no_limit, need).error, Errc::malformed) << h;
}

TEST(MqttCodec, ReadHeaderAsksForMoreWhileIncomplete) {
  struct Case {
    std::string bytes;
    std::size_t need;
  } cases[] = {{"", 2}, {"\x30", 2}, {hex("30 80"), 3}, {hex("30 80 80"), 4}, {hex("30 80 80 80"), 5}};
  for (const Case& c : cases) {
    std::size_t need = 0;
    auto h = read_header(c.bytes, no_limit, need);
    EXPECT_FALSE(h.error) << to_hex(c.bytes);
    EXPECT_EQ(need, c.need) << to_hex(c.bytes);
  }
  // Complete once the length's last byte is there, whether or not the body is.
  std::size_t need = 9;
  auto h = read_header(hex("30 80 01"), no_limit, need);
  ASSERT_FALSE(h.error);
  EXPECT_EQ(need, 0u);
  EXPECT_EQ(h.value.remaining, 128u);
  EXPECT_EQ(h.value.size, 3u);
}

TEST(MqttCodec, TooLargeFromTheHeaderAlone) {
  std::size_t need = 9;
  // Remaining 128 and a 3-byte header: 131 bytes in all (MQTT 5 counts the header).
  EXPECT_EQ(read_header(hex("30 80 01"), 130, need).error, Errc::too_large);
  EXPECT_EQ(need, 0u);
  EXPECT_FALSE(read_header(hex("30 80 01"), 131, need).error);
  EXPECT_EQ(read_header(hex("30 FF FF FF 7F"), 268435459, need).error, Errc::too_large);
  EXPECT_FALSE(read_header(hex("30 FF FF FF 7F"), 268435460, need).error);
  EXPECT_EQ(read_header(hex("C0 00"), 1, need).error, Errc::too_large);
}

// ---- the fixed header's type and flags ----

TEST(MqttCodec, FixedHeaderFlags) {
  std::size_t need;
  for (unsigned t = 1; t <= 15; ++t) {
    if (t == 3) continue;  // PUBLISH's flags are its own
    unsigned fixed = t == 6 || t == 8 || t == 10 ? 0x2 : 0x0;
    for (unsigned flags = 0; flags < 16; ++flags) {
      auto first = static_cast<char>(t << 4 | flags);
      std::string header = {first, 0};
      std::error_code ec = read_header(header, no_limit, need).error;
      if (flags == fixed) {
        EXPECT_FALSE(ec) << type_name(static_cast<Type>(t)) << " flags " << flags;
      } else {
        EXPECT_EQ(ec, Errc::malformed) << type_name(static_cast<Type>(t)) << " flags " << flags;
        // decode checks a header it is given too.
        Packet p;
        EXPECT_EQ(decode(Header{static_cast<std::uint8_t>(first), 0, 2}, "", V::v50, p), Errc::malformed);
      }
    }
  }
  EXPECT_EQ(read_header(hex("00 00"), no_limit, need).error, Errc::bad_type);
  EXPECT_EQ(read_header(hex("0F 00"), no_limit, need).error, Errc::bad_type);
  EXPECT_EQ(read_header(std::string(1, '\0'), no_limit, need).error, Errc::bad_type);  // known from the first byte
}

TEST(MqttCodec, PublishQos3AndDupOnQos0) {
  std::size_t need;
  EXPECT_EQ(read_header(hex("36 00"), no_limit, need).error, Errc::protocol_error);
  EXPECT_EQ(read_header(hex("3F 00"), no_limit, need).error, Errc::protocol_error);
  EXPECT_EQ(read_header(hex("38 00"), no_limit, need).error, Errc::protocol_error);  // DUP, QoS 0
  EXPECT_FALSE(read_header(hex("3D 00"), no_limit, need).error);                   // DUP, QoS 2, RETAIN
  Publish p = publish("t");
  p.qos = 3;
  p.packet_id = 1;
  expect_refused(p, V::v311);
  p.qos = 0;
  p.dup = true;
  expect_refused(p, V::v50);
  Subscribe s{1, {{"t", 3}}, {}};
  expect_refused(s, V::v311);
  Connect c;
  c.will = Will{"w", "p", 3, false, {}};
  expect_refused(c, V::v311);
}

TEST(MqttCodec, PacketIdZero) {
  EXPECT_EQ(parse(frame(0x32, str("t") + u16(0) + "x"), V::v311), Errc::protocol_error);
  EXPECT_EQ(parse(frame(0x34, str("t") + u16(0) + props("")), V::v50), Errc::protocol_error);
  EXPECT_EQ(parse(hex("40 02 00 00"), V::v50), Errc::protocol_error);
  EXPECT_EQ(parse(frame(0x82, u16(0) + str("t") + "\x01"), V::v311), Errc::protocol_error);
  EXPECT_EQ(parse(frame(0xA2, u16(0) + str("t")), V::v311), Errc::protocol_error);
  EXPECT_EQ(parse(frame(0x90, u16(0) + "\x01"), V::v311), Errc::protocol_error);
  Publish p = publish("t");
  p.qos = 1;
  expect_refused(p, V::v311);
  expect_refused(Ack{Type::puback, 0, 0, {}}, V::v50);
  expect_refused(Subscribe{0, {{"t", 0}}, {}}, V::v311);
  expect_refused(Unsubscribe{0, {"t"}, {}}, V::v311);
  // QoS 0 has no packet id on the wire: one set is not written.
  p.qos = 0;
  p.packet_id = 5;
  EXPECT_EQ(to_hex(encoded(p, V::v311)), "30 04 00 01 74 78");
}

// ---- strings and topics ----

TEST(MqttCodec, TopicMustBeUtf8WithoutNul) {
  for (std::string bad : {std::string("a\0b", 3), std::string("\xC0\x80"), std::string("\xED\xA0\x80"),
                          std::string("\xF4\x90\x80\x80"), std::string("\xE2\x82"), std::string("\x80"),
                          std::string("\xFF")}) {
    EXPECT_EQ(parse(frame(0x30, str(bad) + "x"), V::v311), Errc::bad_utf8) << to_hex(bad);
    expect_refused(publish(bad), V::v311);
  }
  std::string good = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9D\x84\x9E \xEF\xBF\xBF";  // é € 𝄞 U+FFFF
  Packet p;
  ASSERT_FALSE(parse(frame(0x30, str(good) + "x"), V::v311, p));
  EXPECT_EQ(std::get<Publish>(p).topic, good);
  // The payload is bytes, never checked.
  ASSERT_FALSE(parse(frame(0x30, str("t") + std::string("\0\xFF", 2)), V::v311, p));
  EXPECT_EQ(std::get<Publish>(p).payload, std::string("\0\xFF", 2));
  // Other strings: a client id, a user property.
  EXPECT_EQ(parse(frame(0x10, str("MQTT") + hex("04 02 00 3C") + str("\xFF")), V::v311), Errc::bad_utf8);
  EXPECT_EQ(parse(frame(0x20, hex("00 00") + props("\x26" + str("k") + str(std::string("\0", 1)))), V::v50),
            Errc::bad_utf8);
}

TEST(MqttCodec, PublishTopicIsANameNotAFilter) {
  for (const char* t : {"a/+", "#", "a/#", "+", "a+b"}) {
    EXPECT_EQ(parse(frame(0x30, str(t) + "x"), V::v311), Errc::protocol_error) << t;
    EXPECT_EQ(parse(frame(0x30, str(t) + props("") + "x"), V::v50), Errc::protocol_error) << t;
    expect_refused(publish(t), V::v50);
  }
  // Empty: only in 5.0 and only with a topic alias.
  EXPECT_EQ(parse(frame(0x30, str("") + "x"), V::v311), Errc::protocol_error);
  EXPECT_EQ(parse(frame(0x30, str("") + props("") + "x"), V::v50), Errc::protocol_error);
  EXPECT_FALSE(parse(frame(0x30, str("") + props(hex("23 00 01")) + "x"), V::v50));
  expect_refused(publish(""), V::v50);
  // A will's topic is a name too.
  Connect c;
  c.will = Will{"w/#", "p", 0, false, {}};
  expect_refused(c, V::v311);
  EXPECT_EQ(parse(frame(0x10, str("MQTT") + hex("04 06 00 3C") + str("id") + str("w/#") + str("p")), V::v311),
            Errc::protocol_error);
}

TEST(MqttCodec, TopicFilters) {
  for (const char* f : {"#", "+", "a/#", "+/+/#", "a/+/c", "/", "$SYS/#", "$share/g/a/+"}) {
    EXPECT_FALSE(parse(frame(0x82, u16(1) + str(f) + hex("00")), V::v311)) << f;
    EXPECT_FALSE(parse(frame(0xA2, u16(1) + props("") + str(f)), V::v50)) << f;
  }
  for (const char* f : {"", "a/#/b", "a#", "a+", "+a", "a/b#", "##"}) {
    EXPECT_EQ(parse(frame(0x82, u16(1) + str(f) + hex("00")), V::v311), Errc::protocol_error) << f;
    EXPECT_EQ(parse(frame(0xA2, u16(1) + props("") + str(f)), V::v50), Errc::protocol_error) << f;
    expect_refused(Subscribe{1, {{f, 0}}, {}}, V::v311);
    expect_refused(Unsubscribe{1, {f}, {}}, V::v50);
  }
}

// ---- properties ----

TEST(MqttCodec, DuplicateProperties) {
  // CONNACK with two Server Keep Alive.
  EXPECT_EQ(parse(frame(0x20, hex("00 00") + props(hex("13 00 01 13 00 02"))), V::v50), Errc::bad_property);
  // User properties repeat, and so do subscription identifiers in a PUBLISH (one per subscription)...
  std::string users = "\x26" + str("k") + str("1") + "\x26" + str("k") + str("2");
  Packet p;
  ASSERT_FALSE(parse(frame(0x20, hex("00 00") + props(users)), V::v50, p));
  EXPECT_EQ(std::get<Connack>(p).props.list.size(), 2u);
  ASSERT_FALSE(parse(frame(0x30, str("t") + props(hex("0B 01 0B 02")) + "x"), V::v50, p));
  EXPECT_EQ(std::get<Publish>(p).props.list.size(), 2u);
  // ... but not in a SUBSCRIBE, which carries at most one (MQTT 5, 3.8.2.1.2).
  EXPECT_EQ(parse(frame(0x82, u16(1) + props(hex("0B 01 0B 02")) + str("t") + hex("00")), V::v50), Errc::bad_property);
  Connack ack;
  ack.props.list.push_back({PropertyId::server_keep_alive, 1, {}, {}});
  ack.props.list.push_back({PropertyId::server_keep_alive, 2, {}, {}});
  expect_refused(ack, V::v50);
}

TEST(MqttCodec, PropertyNotAllowedInThisPacket) {
  // Topic Alias in a PUBACK.
  EXPECT_EQ(parse(frame(0x40, u16(1) + hex("00") + props(hex("23 00 01"))), V::v50), Errc::bad_property);
  // Will Delay Interval belongs to the will's properties, not CONNECT's...
  std::string connect_head = str("MQTT") + hex("05 06 00 3C");
  std::string will = str("w") + str("p");
  EXPECT_EQ(parse(frame(0x10, connect_head + props(hex("18 00 00 00 05")) + str("id") + props("") + will), V::v50),
            Errc::bad_property);
  EXPECT_FALSE(parse(frame(0x10, connect_head + props("") + str("id") + props(hex("18 00 00 00 05")) + will), V::v50));
  // ... and Session Expiry Interval to CONNECT's, not the will's.
  EXPECT_EQ(parse(frame(0x10, connect_head + props("") + str("id") + props(hex("11 00 00 00 05")) + will), V::v50),
            Errc::bad_property);
  Publish p = publish("t");
  p.props.set(PropertyId::session_expiry_interval, 1);
  expect_refused(p, V::v50);
  Connect c;
  c.version = V::v50;
  c.will = Will{"w", "p", 0, false, {}};
  c.will->props.set(PropertyId::receive_maximum, 5);
  expect_refused(c, V::v50);
}

TEST(MqttCodec, UnknownPropertyIdentifier) {
  for (const char* id : {"00", "04", "0A", "2B", "7F", "80 01"}) {
    EXPECT_EQ(parse(frame(0x20, hex("00 00") + props(hex(id) + hex("00 00 00 00"))), V::v50), Errc::bad_property)
        << id;
  }
  Connack ack;
  ack.props.list.push_back({static_cast<PropertyId>(0x04), 1, {}, {}});
  expect_refused(ack, V::v50);
}

TEST(MqttCodec, PropertyLengthPastThePacket) {
  // The property length says 10; 3 bytes follow.
  EXPECT_EQ(parse(frame(0x20, hex("00 00 0A 13 00 01")), V::v50), Errc::malformed);
  // A value cut by the end of the section: a u32 with two bytes, a string longer than what is left.
  EXPECT_EQ(parse(frame(0x20, hex("00 00 03 11 00 00") + hex("00 00")), V::v50), Errc::malformed);
  EXPECT_EQ(parse(frame(0x20, hex("00 00 04 1F 00 05 61")), V::v50), Errc::malformed);
  // A property length that is not a valid variable byte integer.
  EXPECT_EQ(parse(frame(0x20, hex("00 00 80 00")), V::v50), Errc::malformed);
  EXPECT_EQ(parse(frame(0x20, hex("00 00 FF FF FF FF 01")), V::v50), Errc::malformed);
}

TEST(MqttCodec, PropertyValuesOutOfRange) {
  for (const char* prop : {"24 02", "25 02", "28 05", "2A 02", "21 00 00", "27 00 00 00 00"})
    EXPECT_EQ(parse(frame(0x20, hex("00 00") + props(hex(prop))), V::v50), Errc::protocol_error) << prop;
  // A zero that means something: no topic alias wanted, a session that ends with the connection.
  EXPECT_FALSE(parse(frame(0x20, hex("00 00") + props(hex("22 00 00 11 00 00 00 00"))), V::v50));
  EXPECT_EQ(parse(frame(0x30, str("t") + props(hex("0B 00")) + "x"), V::v50), Errc::protocol_error);
  EXPECT_EQ(parse(frame(0x30, str("t") + props(hex("23 00 00")) + "x"), V::v50), Errc::protocol_error);
  EXPECT_EQ(parse(frame(0x30, str("t") + props(hex("01 02")) + "x"), V::v50), Errc::protocol_error);
  EXPECT_EQ(parse(frame(0x30, str("t") + props("\x08" + str("r/+")) + "x"), V::v50), Errc::protocol_error);
  // Encoding a value its wire form cannot hold.
  Publish p = publish("t");
  p.props.set(PropertyId::payload_format_indicator, 256);
  expect_refused(p, V::v50);
  p.props = {};
  p.props.set(PropertyId::topic_alias, 65536);
  expect_refused(p, V::v50);
  p.props = {};
  p.props.set(PropertyId::subscription_identifier, 268435456);
  expect_refused(p, V::v50);
  p.props = {};
  p.props.set(PropertyId::content_type, std::string(65536, 'c'));
  expect_refused(p, V::v50);
  p.props = {};
  p.props.add_user("k", std::string(65536, 'v'));
  expect_refused(p, V::v50);
  // A value in the field its kind does not use would go out as 0 or "": refused.
  p.props = {};
  p.props.set(PropertyId::message_expiry_interval, std::string("60"));
  expect_refused(p, V::v50);
  p.props = {};
  p.props.set(PropertyId::content_type, 5);
  expect_refused(p, V::v50);
}

TEST(MqttCodec, NoPropertiesIn311) {
  // 3.1.1 CONNACK is two bytes: a property length after them is a byte too many.
  EXPECT_EQ(parse(hex("20 03 00 00 00"), V::v311), Errc::malformed);
  EXPECT_FALSE(parse(hex("20 03 00 00 00"), V::v50));
  // PUBLISH: the byte a 5.0 reader takes for the property length is payload in 3.1.1.
  Packet p;
  ASSERT_FALSE(parse(frame(0x30, str("t") + hex("00 41")), V::v311, p));
  EXPECT_EQ(std::get<Publish>(p).payload, hex("00 41"));
  ASSERT_FALSE(parse(frame(0x30, str("t") + hex("00 41")), V::v50, p));
  EXPECT_EQ(std::get<Publish>(p).payload, "A");
  // A list to send in 3.1.1 is refused, not dropped.
  Publish pub = publish("t");
  pub.props.set(PropertyId::message_expiry_interval, 5);
  expect_refused(pub, V::v311);
  Connect c;
  c.props.set(PropertyId::session_expiry_interval, 5);
  expect_refused(c, V::v311);
  expect_refused(Ack{Type::puback, 1, 0x80, {}}, V::v311);
  expect_refused(Disconnect{Type::disconnect, 4, {}}, V::v311);
  expect_refused(Subscribe{1, {{"t", 0, true}}, {}}, V::v311);
  expect_refused(SubAck{Type::unsuback, 1, {0}, {}}, V::v311);
}

// ---- per-packet rules ----

TEST(MqttCodec, Connack311ReturnCodes) {
  for (unsigned rc = 0; rc <= 5; ++rc) {
    Packet p;
    ASSERT_FALSE(parse(frame(0x20, std::string{0, static_cast<char>(rc)}), V::v311, p)) << rc;
    EXPECT_EQ(std::get<Connack>(p).reason, rc);
    EXPECT_FALSE(std::get<Connack>(p).session_present);
  }
  EXPECT_EQ(parse(hex("20 02 00 06"), V::v311), Errc::protocol_error);
  EXPECT_EQ(parse(hex("20 02 00 80"), V::v311), Errc::protocol_error);
  EXPECT_EQ(parse(hex("20 02 01 05"), V::v311), Errc::protocol_error);  // a session with a refusal
  EXPECT_EQ(parse(hex("20 02 02 00"), V::v311), Errc::malformed);       // reserved flag bits
  EXPECT_EQ(parse(hex("20 01 00"), V::v311), Errc::malformed);
  Packet p;
  ASSERT_FALSE(parse(hex("20 02 01 00"), V::v311, p));
  EXPECT_TRUE(std::get<Connack>(p).session_present);
  expect_refused(Connack{false, 6, {}}, V::v311);
  expect_refused(Connack{true, 1, {}}, V::v311);
  EXPECT_FALSE(parse(hex("20 03 00 87 00"), V::v50));  // 5.0: Not authorized
  EXPECT_EQ(parse(hex("20 02 00 00"), V::v50), Errc::malformed);  // 5.0 needs the property length
}

TEST(MqttCodec, SubackReturnCodes) {
  Packet p;
  ASSERT_FALSE(parse(hex("90 05 00 01 00 02 80"), V::v311, p));
  EXPECT_EQ(std::get<SubAck>(p).reasons, (std::vector<std::uint8_t>{0, 2, 0x80}));
  EXPECT_EQ(parse(hex("90 03 00 01 03"), V::v311), Errc::protocol_error);
  EXPECT_EQ(parse(hex("90 03 00 01 81"), V::v311), Errc::protocol_error);
  EXPECT_FALSE(parse(hex("90 04 00 01 00 97"), V::v50));  // 5.0: Quota exceeded
  expect_refused(SubAck{Type::suback, 1, {3}, {}}, V::v311);
  // One reason per filter: none is a protocol error.
  EXPECT_EQ(parse(hex("90 02 00 01"), V::v311), Errc::protocol_error);
  EXPECT_EQ(parse(hex("B0 03 00 01 00"), V::v50), Errc::protocol_error);
  expect_refused(SubAck{Type::suback, 1, {}, {}}, V::v50);
  expect_refused(SubAck{Type::unsuback, 1, {}, {}}, V::v50);
  // 3.1.1's UNSUBACK is the packet id alone.
  EXPECT_EQ(parse(hex("B0 03 00 01 00"), V::v311), Errc::malformed);
}

TEST(MqttCodec, EmptySubscriptionListIsAProtocolError) {
  EXPECT_EQ(parse(hex("82 02 00 01"), V::v311), Errc::protocol_error);
  EXPECT_EQ(parse(hex("82 03 00 01 00"), V::v50), Errc::protocol_error);
  EXPECT_EQ(parse(hex("A2 02 00 01"), V::v311), Errc::protocol_error);
  EXPECT_EQ(parse(hex("A2 03 00 01 00"), V::v50), Errc::protocol_error);
  expect_refused(Subscribe{1, {}, {}}, V::v311);
  expect_refused(Unsubscribe{1, {}, {}}, V::v50);
}

TEST(MqttCodec, SubscriptionOptions) {
  std::string head = u16(1) + str("t");
  EXPECT_EQ(parse(frame(0x82, head + "\x04"), V::v311), Errc::malformed);       // No Local: 5.0 only
  EXPECT_EQ(parse(frame(0x82, head + "\x03"), V::v311), Errc::protocol_error);  // QoS 3
  EXPECT_EQ(parse(frame(0x82, u16(1) + props("") + str("t") + "\x30"), V::v50), Errc::protocol_error);  // RH 3
  EXPECT_EQ(parse(frame(0x82, u16(1) + props("") + str("t") + "\x40"), V::v50), Errc::malformed);  // reserved
  EXPECT_EQ(parse(frame(0x82, head), V::v311), Errc::malformed);  // a filter without its options
  expect_refused(Subscribe{1, {{"t", 0, false, false, 3}}, {}}, V::v50);
}

TEST(MqttCodec, AuthOnlyIn50) {
  EXPECT_EQ(parse(hex("F0 00"), V::v311), Errc::bad_type);
  Packet p;
  ASSERT_FALSE(parse(hex("F0 00"), V::v50, p));
  EXPECT_EQ(type_of(p), Type::auth);
  expect_refused(Disconnect{Type::auth, 0, {}}, V::v311);
}

TEST(MqttCodec, ConnectRules) {
  std::string tail = hex("00 3C") + str("id");
  EXPECT_EQ(parse(frame(0x10, str("MQIsdp") + hex("03 02") + tail), V::v311), Errc::protocol_error);
  EXPECT_EQ(parse(frame(0x10, str("MQTT") + hex("03 02") + tail), V::v311), Errc::protocol_error);
  EXPECT_EQ(parse(frame(0x10, str("MQTT") + hex("04 03") + tail), V::v311), Errc::malformed);  // reserved bit
  EXPECT_EQ(parse(frame(0x10, str("MQTT") + hex("04 22") + tail), V::v311), Errc::malformed);  // retain, no will
  EXPECT_EQ(parse(frame(0x10, str("MQTT") + hex("04 0A") + tail), V::v311), Errc::malformed);  // QoS, no will
  EXPECT_EQ(parse(frame(0x10, str("MQTT") + hex("04 42") + tail + str("pw")), V::v311), Errc::protocol_error);
  // CONNECT follows its own protocol level whatever the caller expects.
  Packet p;
  ASSERT_FALSE(parse(frame(0x10, str("MQTT") + hex("05 42") + hex("00 3C 00") + str("id") + str("pw")), V::v311, p));
  EXPECT_EQ(std::get<Connect>(p).version, V::v50);
  EXPECT_EQ(std::get<Connect>(p).password, "pw");
  EXPECT_FALSE(std::get<Connect>(p).username);
  Connect c;
  c.password = "pw";
  expect_refused(c, V::v311);  // 3.1.1: a password needs a user name
  c.username = "u";
  expect_round_trip(c, V::v311);
  c.version = static_cast<V>(3);
  expect_refused(c, V::v311);
}

TEST(MqttCodec, TruncatedBodies) {
  Connect c;
  c.version = V::v50;
  c.client_id = "id";
  c.username = "u";
  c.password = "pw";
  c.will = Will{"w", "p", 1, true, {}};
  c.will->props.set(PropertyId::will_delay_interval, 9);
  c.props.set(PropertyId::session_expiry_interval, 9);
  Subscribe s{1, {{"a/b", 1}}, {}};
  s.props.set(PropertyId::subscription_identifier, 3);
  Ack a{Type::pubrec, 1, 0x80, {}};
  a.props.set(PropertyId::reason_string, "no");
  for (const Packet& packet : {Packet(c), Packet(s), Packet(a)}) {
    std::string wire = encoded(packet, V::v50);
    std::size_t need;
    auto h = read_header(wire, no_limit, need);
    ASSERT_FALSE(h.error);
    std::string_view body = std::string_view(wire).substr(h.value.size);
    // A body shorter than the header says.
    Packet out;
    EXPECT_EQ(decode(h.value, body.substr(0, body.size() - 1), V::v50, out), Errc::malformed);
    // Every prefix framed as a whole packet: a field cut short. (A PUBREC's first 2 and 3
    // bytes are its short forms, and a SUBSCRIBE without its filters is empty.)
    for (std::size_t n = 0; n < body.size(); ++n) {
      Header cut{h.value.first, static_cast<std::uint32_t>(n), 2};
      std::error_code ec = decode(cut, body.substr(0, n), V::v50, out);
      if (type_of(packet) == Type::pubrec && (n == 2 || n == 3)) {
        EXPECT_FALSE(ec) << n;
      } else if (type_of(packet) == Type::subscribe && n == 5) {
        EXPECT_EQ(ec, Errc::protocol_error);
      } else {
        EXPECT_EQ(ec, Errc::malformed) << type_name(type_of(packet)) << " cut at " << n;
      }
    }
  }
  EXPECT_EQ(parse(hex("C0 01 00"), V::v311), Errc::malformed);  // PINGREQ has no body
  EXPECT_EQ(parse(hex("E0 01 00"), V::v311), Errc::malformed);  // nor 3.1.1's DISCONNECT
}

TEST(MqttCodec, DecodeLeavesOutAloneOnError) {
  Packet p = Ping{Type::pingresp};
  EXPECT_EQ(parse(frame(0x30, str("a/+") + "x"), V::v311, p), Errc::protocol_error);
  ASSERT_TRUE(std::holds_alternative<Ping>(p));
  EXPECT_EQ(std::get<Ping>(p).type, Type::pingresp);
  EXPECT_EQ(decode(Header{0x30, 1, 2}, "", V::v311, p), Errc::malformed);  // body shorter than remaining
  EXPECT_EQ(decode(Header{0xC0, 0, 2}, "", static_cast<V>(3), p), Errc::invalid_argument);
}

// ---- hostile values to encode ----

TEST(MqttCodec, EncodeRefusesWhatCannotBeSent) {
  expect_refused(publish(std::string(65536, 't')), V::v311);
  expect_round_trip(publish(std::string(65535, 't')), V::v311);
  Connect c;
  c.client_id = std::string(65536, 'c');
  expect_refused(c, V::v311);
  c.client_id = "c";
  c.username = std::string(65536, 'u');
  c.password = "p";
  expect_refused(c, V::v311);
  c.username = "u";
  c.password = std::string(65536, 'p');
  expect_refused(c, V::v311);
  c.password = "p";
  c.will = Will{"w", std::string(65536, 'w'), 0, false, {}};
  expect_refused(c, V::v311);
  expect_refused(Ack{Type::connect, 1, 0, {}}, V::v50);
  expect_refused(SubAck{Type::puback, 1, {0}, {}}, V::v50);
  expect_refused(Ping{Type::publish}, V::v50);
  expect_refused(Disconnect{Type::pingreq, 0, {}}, V::v50);
  std::string out = "keep";
  EXPECT_EQ(encode(Ping{}, static_cast<V>(3), out), Errc::invalid_argument);
  EXPECT_EQ(out, "keep");
}

// The remaining length's maximum, 268435455, exceeded by one byte of payload (256 MiB).
TEST(MqttCodec, EncodeRefusesAPayloadOverTheMaximum) {
  Publish p = publish("t", std::string(268435455 - 3 + 1, '\0'));
  std::string out = "keep";
  EXPECT_EQ(encode(p, V::v311, out), Errc::invalid_argument);
  EXPECT_EQ(out, "keep");
  EXPECT_EQ(out.capacity() < 1024, true);  // nothing was reserved for it
}

// ---- the names and the helpers ----

TEST(MqttCodec, PropertiesHelpers) {
  Properties p;
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.find(PropertyId::topic_alias), nullptr);
  EXPECT_FALSE(p.number(PropertyId::topic_alias));
  p.set(PropertyId::topic_alias, 3);
  p.add_user("a", "1");
  p.list.push_back({PropertyId::topic_alias, 4, {}, {}});
  p.set(PropertyId::topic_alias, 5);  // replaces the first, drops the other
  ASSERT_EQ(p.list.size(), 2u);
  EXPECT_EQ(p.number(PropertyId::topic_alias), 5u);
  EXPECT_EQ(p.list[0].id, PropertyId::topic_alias);
  p.set(PropertyId::content_type, "json");
  p.set(PropertyId::content_type, "text");
  ASSERT_NE(p.find(PropertyId::content_type), nullptr);
  EXPECT_EQ(p.find(PropertyId::content_type)->text, "text");
  p.add_user("a", "2");
  EXPECT_EQ(p.list.size(), 4u);
  EXPECT_EQ(p.find(PropertyId::user_property)->value, "1");

  EXPECT_EQ(property_kind(0x11), PropertyKind::u32);
  EXPECT_EQ(property_kind(0x0B), PropertyKind::varint);
  EXPECT_EQ(property_kind(0x26), PropertyKind::pair);
  EXPECT_EQ(property_kind(0x09), PropertyKind::binary);
  EXPECT_EQ(property_kind(0x04), PropertyKind::none);
  EXPECT_EQ(property_kind(0xFF), PropertyKind::none);
  EXPECT_STREQ(property_name(0x11), "session_expiry_interval");
  EXPECT_EQ(property_name(0x2B), nullptr);
  EXPECT_EQ(property_id("topic_alias"), 0x23);
  EXPECT_EQ(property_id("shared_subscription_available"), 0x2A);
  EXPECT_FALSE(property_id("nope"));
  for (unsigned id = 0; id < 256; ++id) {
    if (const char* name = property_name(static_cast<std::uint8_t>(id))) {
      EXPECT_EQ(property_id(name), id);
      EXPECT_NE(property_kind(static_cast<std::uint8_t>(id)), PropertyKind::none);
    }
  }
}

TEST(MqttCodec, ErrorCategoryAndNames) {
  std::error_code ec = Errc::malformed;
  EXPECT_STREQ(ec.category().name(), "mqtt");
  EXPECT_EQ(&ec.category(), &mqtt_category());
  EXPECT_EQ(ec.message().rfind("malformed packet", 0), 0u);
  std::set<std::string> seen;
  for (int e = 1; e <= static_cast<int>(Errc::invalid_argument); ++e) {
    std::string m = make_error_code(static_cast<Errc>(e)).message();
    EXPECT_FALSE(m.empty());
    EXPECT_TRUE(seen.insert(m).second) << m;
  }
  EXPECT_EQ(make_error_code(Errc::too_large).message().rfind("packet too large", 0), 0u);
  EXPECT_STREQ(type_name(Type::connect), "CONNECT");
  EXPECT_STREQ(type_name(Type::unsuback), "UNSUBACK");
  EXPECT_STREQ(type_name(Type::auth), "AUTH");
  EXPECT_EQ(type_of(Ack{Type::pubcomp, 1, 0, {}}), Type::pubcomp);
  EXPECT_EQ(type_of(Publish{}), Type::publish);
  EXPECT_EQ(type_of(Disconnect{Type::auth, 0, {}}), Type::auth);
}

}  // namespace
