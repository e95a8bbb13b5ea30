// libFuzzer target for the MQTT codec (tests/fuzz/run.sh builds and runs it). The first byte
// picks the version (bit 0: 5.0), the maximum packet size (bit 1: 64 bytes, else none) and a
// change to make to the packet once decoded (bits 2-7, 0: none); the rest is what a peer sent.
// Besides the sanitizers' findings, the properties checked:
// - read_header asks for more only while the header is incomplete, and only for more;
// - decode refuses a body shorter than the remaining length;
// - whatever decodes encodes, the encoding reads back equal, and encoding that again gives
//   the same bytes (one canonical form);
// - a changed packet (values no decoder produced: a QoS of 3, an unknown property, a 64 KiB
//   topic, the other version ...) is either refused by encode, its output left alone, or
//   encoded so that it reads back equal: encode never writes what decode refuses.
#include <corio/mqtt_packet.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

using namespace corio::mqtt;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "mqtt_packet_fuzz: %s\n", what);
  std::abort();
}

std::string pick(std::uint32_t x) {
  switch (x % 9) {
    case 0: return "";
    case 1: return "a";
    case 2: return "a/+";
    case 3: return "#";
    case 4: return "\xFF";
    case 5: return std::string(1, '\0');
    case 6: return "caf\xC3\xA9";
    case 7: return std::string(65535, 'x');
    default: return std::string(65536, 'x');
  }
}

Properties* props_of(Packet& p) {
  return std::visit([](auto& x) -> Properties* {
    if constexpr (requires { x.props; }) return &x.props;
    return nullptr;
  }, p);
}

// Change one thing in p (or v), chosen by m, with x as the new value's seed.
void mutate(Packet& p, Version& v, unsigned m, std::uint32_t x) {
  auto b = static_cast<std::uint8_t>(x);
  auto t = static_cast<Type>(x & 15);
  switch (m % 8) {
    case 1: v = v == Version::v50 ? Version::v311 : Version::v50; break;
    case 2:
      if (auto* pub = std::get_if<Publish>(&p)) {
        pub->qos = b & 3;
        pub->dup = b & 4;
        pub->packet_id = static_cast<std::uint16_t>(x >> 8);
      } else if (auto* c = std::get_if<Connect>(&p)) {
        c->version = static_cast<Version>(b & 7);
        if (c->will) c->will->qos = b >> 3 & 3;
      }
      break;
    case 3:
      if (Properties* props = props_of(p)) {
        Property& q = props->list.emplace_back();
        q.id = static_cast<PropertyId>(b & 0x3F);
        q.number = x & 64 ? x >> 8 : 0;
        if (x & 128) q.text = pick(x >> 8);
        if (x & 0x10000) q.value = pick(x >> 17);
      }
      break;
    case 4:
      if (auto* a = std::get_if<Ack>(&p)) a->type = t;
      if (auto* s = std::get_if<SubAck>(&p)) s->type = t;
      if (auto* g = std::get_if<Ping>(&p)) g->type = t;
      if (auto* d = std::get_if<Disconnect>(&p)) d->type = t;
      break;
    case 5:
      if (auto* s = std::get_if<Subscribe>(&p); s && !s->subscriptions.empty()) {
        Subscription& sub = s->subscriptions.back();
        sub.qos = b & 3;
        sub.no_local = b & 4;
        sub.retain_as_published = b & 8;
        sub.retain_handling = b >> 4 & 3;
      } else if (auto* s = std::get_if<Subscribe>(&p)) {
        s->subscriptions.clear();
      }
      break;
    case 6:
      if (auto* s = std::get_if<SubAck>(&p)) s->reasons.push_back(b);
      if (auto* a = std::get_if<Ack>(&p)) a->reason = b;
      if (auto* d = std::get_if<Disconnect>(&p)) d->reason = b;
      if (auto* c = std::get_if<Connack>(&p)) {
        c->reason = b;
        c->session_present = x & 0x100;
      }
      break;
    case 7:
      if (auto* pub = std::get_if<Publish>(&p)) pub->topic = pick(x);
      if (auto* c = std::get_if<Connect>(&p)) (x & 0x100 ? c->client_id : c->username.emplace()) = pick(x);
      if (auto* s = std::get_if<Subscribe>(&p)) s->subscriptions.push_back({pick(x), 0, false, false, 0});
      if (auto* u = std::get_if<Unsubscribe>(&p)) u->filters.push_back(pick(x));
      break;
  }
}

// What encode leaves out by design: the packet id of a QoS 0 message.
void normalize(Packet& p) {
  if (auto* pub = std::get_if<Publish>(&p); pub && pub->qos == 0) pub->packet_id = 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Version v = data[0] & 1 ? Version::v50 : Version::v311;
  std::uint32_t max = data[0] & 2 ? 64 : 268435460;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::size_t need = 99;
  auto h = read_header(in, max, need);
  if (h.error) {
    if (need != 0) fail("read_header: need set on an error");
    if (mqtt_category().message(h.error.value()).empty()) fail("an error without a message");
    return 0;
  }
  if (need) {
    if (need <= in.size()) fail("read_header: need asks for no more bytes");
    return 0;
  }
  if (h.value.size < 2 || h.value.size > 5 || h.value.size + std::uint64_t{h.value.remaining} > max)
    fail("read_header: a header out of bounds");

  std::string_view body = in.substr(h.value.size);
  Packet p;
  if (body.size() < h.value.remaining) {
    if (decode(h.value, body, v, p) != Errc::malformed) fail("decode: a truncated body not malformed");
    return 0;
  }
  body = body.substr(0, h.value.remaining);
  if (decode(h.value, body, v, p)) return 0;

  unsigned m = data[0] >> 2;
  std::uint32_t x = 2166136261u;  // FNV-1a of the input: the new value's seed
  for (std::size_t i = 0; i < size; ++i) x = (x ^ data[i]) * 16777619u;
  Version ev = v;
  mutate(p, ev, m, x);

  std::string out = "prefix";
  if (auto ec = encode(p, ev, out)) {
    if (out != "prefix") fail("encode: a refusal changed the output");
    if (m % 8 == 0) {
      std::fprintf(stderr, "%s: %s\n", type_name(type_of(p)), ec.message().c_str());
      fail("encode refused a decoded packet");
    }
    return 0;
  }
  if (out.compare(0, 6, "prefix") != 0) fail("encode: the output's earlier bytes changed");
  std::string_view wire = std::string_view(out).substr(6);
  std::size_t need2 = 99;
  auto h2 = read_header(wire, 268435460, need2);
  if (h2.error || need2 || h2.value.size + h2.value.remaining != wire.size()) fail("re-read header");
  if (m % 8 == 0 && h2.value.first != h.value.first) fail("re-read header: another first byte");
  Packet q;
  if (auto ec = decode(h2.value, wire.substr(h2.value.size), ev, q)) {
    std::fprintf(stderr, "%s: %s\n", type_name(type_of(p)), ec.message().c_str());
    fail("decode refused an encoded packet");
  }
  normalize(p);
  if (!(p == q)) fail("round trip: the packet read back differs");
  std::string again;
  if (encode(q, ev, again) || again != wire) fail("encode: a second encoding differs");
  return 0;
}
