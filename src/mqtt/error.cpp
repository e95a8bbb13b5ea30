// The codec's error category, "mqtt": what was wrong with a packet read, or with one to send.
#include <corio/mqtt_packet.hpp>

#include <string>

namespace corio::mqtt {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "mqtt"; }
  std::string message(int c) const override {
    switch (static_cast<Errc>(c)) {
      case Errc::malformed: return "malformed packet: a bad length or flag, or a truncated field";
      case Errc::too_large: return "packet too large: over the maximum packet size";
      case Errc::bad_type: return "bad packet type: reserved, or AUTH in MQTT 3.1.1";
      case Errc::bad_property: return "bad property: unknown, not allowed in this packet, or repeated";
      case Errc::protocol_error: return "protocol error: a value MQTT forbids (QoS 3, packet id 0, a bad topic)";
      case Errc::bad_utf8: return "bad string: not well-formed UTF-8, or holds U+0000";
      case Errc::invalid_argument: return "invalid argument: a value that cannot be encoded";
    }
    return "unknown mqtt error";
  }
};

}  // namespace

const std::error_category& mqtt_category() noexcept {
  static const Category c;
  return c;
}

}  // namespace corio::mqtt
