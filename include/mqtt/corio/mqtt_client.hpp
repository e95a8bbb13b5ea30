// An MQTT 3.1.1 / 5.0 client on corio's sockets: one connection kept alive (PINGREQ after
// keep_alive seconds of send silence, the connection declared dead when nothing answers in
// time), reconnected with exponential back-off and jitter, QoS 0/1/2 with the in-flight
// messages of a kept session sent again on reconnect.
//
//   corio::mqtt::Client c(loop, {.host = "127.0.0.1", .client_id = "me"});
//   c.on_message = [](const corio::mqtt::Publish& m) { ... };
//   c.start();                                    // connects in the background
//   auto ec = co_await c.connected(5s);           // the CONNACK (or why not)
//   ec = co_await c.publish({.topic = "t", .payload = "x", .qos = 1});  // its PUBACK
//   c.disconnect();                               // final: no reconnect after it
//
// Everything runs on the loop's thread. Requests made while disconnected wait for the
// connection (QoS 0 too, up to Options::max_queued); disconnect() fails what still waits.
#pragma once
#include <corio/mqtt_packet.hpp>
#include <corio/timer.hpp>
#include <corio/tls.hpp>

#include <chrono>
#include <coroutine>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace corio::mqtt {

// The client's own failures, beside the codec's Errc and the sockets' corio::Error.
enum class ClientErrc {
  refused = 1,           // CONNACK with a failure code (the reason is in the error message)
  keep_alive_timeout,    // nothing came back within the deadline after a PINGREQ
  disconnected,          // disconnect() was called: the request will never complete
  session_lost,          // the broker kept no session: an in-flight message was dropped
  unexpected_packet,     // a packet a broker must not send, or an ack for an id never used
  receive_maximum,       // the broker sent more unacknowledged QoS>0 messages than allowed
  rejected,              // the broker answered a request with a failure reason code
  queue_full,            // more requests waiting for the connection than max_queued
  broker_disconnect,     // the broker sent DISCONNECT (5.0)
};
const std::error_category& client_category() noexcept;
inline std::error_code make_error_code(ClientErrc e) noexcept { return {static_cast<int>(e), client_category()}; }

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: 1883, or 8883 with TLS
  std::shared_ptr<TlsContext> tls;  // set: mqtts
  std::string servername;           // the name the certificate must carry; empty: host
  Version version = Version::v311;
  std::string client_id;
  bool clean = true;
  std::optional<std::string> username, password;
  std::optional<Will> will;
  Properties connect_props;  // 5.0: session expiry, receive maximum ... (topic alias max: below)
  std::uint16_t keep_alive = 60;  // seconds; 0: no pings
  // No answer this long after a PINGREQ: the connection is dead. Default: keep_alive.
  std::optional<Duration> ping_deadline;
  Duration connect_timeout = std::chrono::seconds(30);  // TCP + TLS + CONNACK
  // Reconnecting after a drop (not after disconnect()): off, or the first delay, doubled
  // after each failure up to reconnect_max, each delay with +-jitter (a fraction of it).
  std::optional<Duration> reconnect;
  Duration reconnect_max = std::chrono::seconds(60);
  double jitter = 0.25;
  std::uint32_t max_packet_size = 16 * 1024 * 1024;  // what we accept (sent in 5.0's CONNECT)
  std::uint16_t receive_maximum = 65535;             // 5.0: unacknowledged QoS>0 we accept
  std::uint16_t topic_alias_maximum = 0;             // 5.0: aliases the broker may use towards us
  std::size_t max_queued = 100000;  // requests waiting for the connection; unread messages
  // Received QoS>0 messages are acknowledged by acknowledge() (luamqtt's way), not when
  // on_message returns.
  bool manual_ack = false;
};

class Client {
 public:
  template <class T>
  class Wait;  // an awaitable result

  Client(Loop& loop, Options opts);
  ~Client();  // closes the connection; pending requests are dropped without their callbacks
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Events; each may be left empty. on_error gets what ended a connection or a request that
  // has no callback of its own, with a clear message; on_close tells a connection ended.
  std::function<void(const Connack&)> on_connect;
  // QoS 2: once per message. Without it, messages wait for message().
  std::function<void(Publish&)> on_message;
  std::function<void(std::error_code, const std::string&)> on_error;
  std::function<void(std::error_code)> on_close;

  void start();  // connects (again after a drop, as options say)
  // A request; done (if any) runs once with its outcome: QoS 0 when written, QoS 1 on
  // PUBACK, QoS 2 on PUBCOMP, (un)subscribe on SUBACK/UNSUBACK (with its reason codes).
  void publish(Publish p, std::function<void(std::error_code)> done = {});
  void subscribe(Subscribe s, std::function<void(std::error_code, const SubAck&)> done = {});
  void unsubscribe(Unsubscribe u, std::function<void(std::error_code, const SubAck&)> done = {});
  // With Options::manual_ack: PUBACK (QoS 1) or PUBREC (QoS 2) for a message received;
  // a reason >= 0x80 (5.0) refuses it.
  void acknowledge(const Publish& m, std::uint8_t reason = 0, Properties props = {});
  // Final: sends DISCONNECT (with reason in 5.0) after what is already written, closes,
  // never reconnects; requests still waiting fail with ClientErrc::disconnected.
  void disconnect(std::uint8_t reason = 0, Properties props = {});

  // Coroutine faces of the same.
  Wait<std::error_code> connected(std::optional<Duration> timeout = std::nullopt);
  Wait<std::error_code> publish_acked(Publish p);
  Wait<Result<SubAck>> subscribed(Subscribe s);
  // The next message, when there is no on_message (Error::timeout when none came in time).
  Wait<Result<Publish>> message(std::optional<Duration> timeout = std::nullopt);

  bool is_connected() const noexcept;
  bool is_finished() const noexcept;  // disconnect() was called and the connection is gone
  bool is_active() const noexcept;    // started and not given up: connected, or will be
  const Options& options() const noexcept { return opts_; }
  std::uint16_t keep_alive() const noexcept;  // in force: a 5.0 broker may have set another
  const std::string& client_id() const noexcept;  // a 5.0 broker may have assigned one
  std::size_t in_flight() const noexcept;     // QoS>0 messages of ours not yet acknowledged

  struct State;

 private:
  Options opts_;
  std::unique_ptr<State> st_;
};

// A request's result, awaited once. The waiting frame is resumed from the loop, never from
// inside the client; a frame destroyed while it waits is forgotten.
template <class T>
class Client::Wait {
 public:
  struct Slot {
    std::optional<T> value;
    std::coroutine_handle<> waiter;
    std::unique_ptr<Timer> timer;  // a wait with a timeout
  };
  explicit Wait(std::shared_ptr<Slot> s) : slot_(std::move(s)) {}
  Wait(const Wait&) = delete;
  Wait& operator=(const Wait&) = delete;
  ~Wait() {
    if (slot_) slot_->waiter = {};
  }
  bool await_ready() const noexcept { return slot_->value.has_value(); }
  void await_suspend(std::coroutine_handle<> h) noexcept { slot_->waiter = h; }
  T await_resume() { return std::move(*slot_->value); }

 private:
  std::shared_ptr<Slot> slot_;
};

}  // namespace corio::mqtt

template <>
struct std::is_error_code_enum<corio::mqtt::ClientErrc> : std::true_type {};
