// The MQTT client's error category: what ended a connection or a request, beside the
// codec's (mqtt_category) and the sockets' (corio::error_category).
#include <corio/mqtt_client.hpp>

namespace corio::mqtt {

namespace {

class ClientCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "mqtt client"; }
  std::string message(int v) const override {
    switch (static_cast<ClientErrc>(v)) {
      case ClientErrc::refused: return "connection refused by the broker";
      case ClientErrc::keep_alive_timeout: return "keep-alive timeout: the broker did not answer PINGREQ";
      case ClientErrc::disconnected: return "disconnected";
      case ClientErrc::session_lost: return "session lost: the broker kept no session";
      case ClientErrc::unexpected_packet: return "unexpected packet from the broker";
      case ClientErrc::receive_maximum: return "receive maximum exceeded";
      case ClientErrc::rejected: return "rejected by the broker";
      case ClientErrc::queue_full: return "too many requests waiting";
      case ClientErrc::broker_disconnect: return "the broker disconnected";
    }
    return "unknown mqtt client error";
  }
};

}  // namespace

const std::error_category& client_category() noexcept {
  static const ClientCategory c;
  return c;
}

}  // namespace corio::mqtt
