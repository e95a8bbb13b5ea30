// corio::mqtt::Client against a real mosquitto the test starts (and stops by PID): every QoS
// both ways in 3.1.1 and 5.0, cross-checked with mosquitto_pub / mosquitto_sub; keep-alive
// pings seen in the broker's log; a SIGSTOPped broker declared dead, then reconnected to;
// in-flight QoS 1/2 messages of a kept session delivered after the reconnect; the last will;
// mqtts; 200 clients in one loop; and a fake broker on a corio Listener that sends what a
// broker must not (garbage, an oversized packet, an ack for an id never used, a close in
// the middle of a packet): a clear error each time, and the loop goes on.
#include <corio/awaiters.hpp>
#include <corio/listener.hpp>
#include <corio/mqtt_client.hpp>
#include <corio/stream.hpp>
#include <corio/task.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mosquitto_support.hpp"
#include "net_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Loop;
using corio::Task;
using corio_test::Mosquitto;
using corio_test::run_until;
namespace mqtt = corio::mqtt;

class MqttClientTest : public corio_test::LoopFixture {
 protected:
  void SetUp() override {
    LoopFixture::SetUp();
    broker = std::make_unique<Mosquitto>();
    if (!broker->ok()) GTEST_FAIL() << broker->error;
  }
  void TearDown() override {
    broker.reset();
    // Timers and sockets of clients already destroyed: nothing may be left on the loop.
    run_until(loop, [] { return false; }, 20ms);
    LoopFixture::TearDown();
  }
  mqtt::Options opts(const std::string& id, mqtt::Version v = mqtt::Version::v311) {
    mqtt::Options o;
    o.port = broker->port;
    o.client_id = id;
    o.version = v;
    return o;
  }
  std::unique_ptr<Mosquitto> broker;
};

// Runs a coroutine to its end within limit.
bool run(Loop& loop, Task<void> t, corio::Duration limit = 10s) {
  return corio_net_test::run_task(loop, std::move(t), limit);
}

// Runs the loop until pred(), which watches another process (the broker's log, a file):
// nothing on the loop would wake it for that, so a timer looks every 5 ms.
template <class Pred>
bool watch(Loop& loop, Pred pred, corio::Duration limit) {
  corio::Timer tick(loop);
  tick.start(5ms, [] {}, 5ms);
  bool ok = run_until(loop, pred, limit);
  tick.stop();
  return ok;
}

// Requests built outside the coroutines (GCC 12 miscompiles a string literal in a braced
// initializer inside one).
mqtt::Publish publish_of(std::string topic, std::string payload, int qos) {
  mqtt::Publish p;
  p.topic = std::move(topic);
  p.payload = std::move(payload);
  p.qos = static_cast<std::uint8_t>(qos);
  return p;
}
mqtt::Subscribe subscribe_to(std::string filter, int qos) {
  mqtt::Subscribe s;
  mqtt::Subscription one;
  one.filter = std::move(filter);
  one.qos = static_cast<std::uint8_t>(qos);
  s.subscriptions.push_back(std::move(one));
  return s;
}

class VersionTest : public MqttClientTest, public ::testing::WithParamInterface<mqtt::Version> {};

TEST_P(VersionTest, EveryQosToItselfWithRetainAndProperties) {
  const mqtt::Version v = GetParam();
  mqtt::Client c(loop, opts("self", v));
  std::vector<mqtt::Publish> got;
  c.on_message = [&](mqtt::Publish& m) { got.push_back(m); };
  std::vector<std::string> errors;
  c.on_error = [&](std::error_code, const std::string& why) { errors.push_back(why); };
  c.start();
  std::error_code connect_ec, sub_ec;
  std::vector<std::error_code> pub_ec(3);
  std::vector<std::uint8_t> granted;
  const std::string base("payload \0 q", 11);  // (GCC 12: no string literal inside a coroutine)
  auto body = [&]() -> Task<void> {
    connect_ec = co_await c.connected(5s);
    if (connect_ec) co_return;
    auto sub = co_await c.subscribed(subscribe_to("corio/t/#", 2));
    sub_ec = sub.error;
    granted = sub.value.reasons;
    for (std::uint8_t q = 0; q < 3; ++q) {
      mqtt::Publish p = publish_of("corio/t/" + std::to_string(q), base + char('0' + q), q);
      if (v == mqtt::Version::v50) {
        p.props.set(mqtt::PropertyId::content_type, "text/plain");
        p.props.add_user("k", "v" + std::to_string(q));
      }
      pub_ec[q] = co_await c.publish_acked(std::move(p));
    }
  };
  ASSERT_TRUE(run(loop, body()));
  EXPECT_FALSE(connect_ec) << connect_ec.message();
  EXPECT_FALSE(sub_ec) << sub_ec.message();
  EXPECT_EQ(std::vector<std::uint8_t>{2}, granted);
  for (auto& ec : pub_ec) EXPECT_FALSE(ec) << ec.message();
  ASSERT_TRUE(run_until(loop, [&] { return got.size() == 3; }, 5s));
  for (std::uint8_t q = 0; q < 3; ++q) {
    EXPECT_EQ("corio/t/" + std::to_string(q), got[q].topic);
    EXPECT_EQ(std::string("payload \0 q", 11) + char('0' + q), got[q].payload);
    EXPECT_EQ(q, got[q].qos);
    if (v == mqtt::Version::v50) {
      const mqtt::Property* ct = got[q].props.find(mqtt::PropertyId::content_type);
      ASSERT_TRUE(ct);
      EXPECT_EQ("text/plain", ct->text);
    }
  }
  EXPECT_EQ(0u, c.in_flight());
  c.disconnect();
  ASSERT_TRUE(run_until(loop, [&] { return c.is_finished(); }, 5s));
  EXPECT_TRUE(errors.empty()) << errors.front();
  // (the broker logs it once it has read it)
  EXPECT_TRUE(watch(loop, [&] { return broker->count("Received DISCONNECT from self") == 1; }, 2s))
      << Mosquitto::read(broker->log);
}

TEST_P(VersionTest, CrossCheckedWithMosquittoPubAndSub) {
  const mqtt::Version v = GetParam();
  const std::string vflag = v == mqtt::Version::v50 ? " -V mqttv5" : " -V mqttv311";
  mqtt::Client c(loop, opts("cross", v));
  std::map<std::string, mqtt::Publish> got;
  c.on_message = [&](mqtt::Publish& m) { got[m.payload] = m; };
  c.start();
  std::error_code ec;
  auto sub = [&]() -> Task<void> {
    if ((ec = co_await c.connected(5s))) co_return;
    ec = (co_await c.subscribed(subscribe_to("corio/in", 2))).error;
  };
  ASSERT_TRUE(run(loop, sub()));
  ASSERT_FALSE(ec) << ec.message();
  // mosquitto_pub publishes at each QoS; we receive each exactly once.
  for (int q = 0; q < 3; ++q)
    ASSERT_TRUE(corio_test::sh("timeout 10 " + broker->client("mosquitto_pub") + vflag + " -q " + std::to_string(q) +
                               " -t corio/in -m from-pub-" + std::to_string(q)));
  ASSERT_TRUE(run_until(loop, [&] { return got.size() == 3; }, 5s));
  for (int q = 0; q < 3; ++q) EXPECT_EQ(q, got["from-pub-" + std::to_string(q)].qos);
  // mosquitto_sub receives what we publish at each QoS (it subscribes at 2).
  const std::string file = broker->dir + "/sub.out";
  ASSERT_TRUE(corio_test::sh("timeout 10 " + broker->client("mosquitto_sub") + vflag +
                             " -q 2 -t corio/out -C 3 -F '%q %p' > " + file + " 2>&1 &"));
  ASSERT_TRUE(watch(loop, [&] { return broker->count("SUBSCRIBE") >= 2; }, 5s));  // ours and its
  std::vector<std::error_code> pub(3, std::error_code(corio::Error::timeout));
  for (std::uint8_t q = 0; q < 3; ++q)
    c.publish(publish_of("corio/out", "from-corio-" + std::to_string(q), q), [&pub, q](std::error_code e) { pub[q] = e; });
  const std::error_code pending = corio::Error::timeout;
  ASSERT_TRUE(watch(loop, [&] {
    return Mosquitto::read(file).size() >= 3 * 15 && pub[0] != pending && pub[1] != pending && pub[2] != pending;
  }, 10s)) << Mosquitto::read(file);
  for (auto& e : pub) EXPECT_FALSE(e) << e.message();
  EXPECT_EQ("0 from-corio-0\n1 from-corio-1\n2 from-corio-2\n", Mosquitto::read(file));
  c.disconnect();
  ASSERT_TRUE(run_until(loop, [&] { return c.is_finished(); }, 5s));
}

INSTANTIATE_TEST_SUITE_P(Mqtt, VersionTest, ::testing::Values(mqtt::Version::v311, mqtt::Version::v50),
                         [](const auto& info) { return info.param == mqtt::Version::v50 ? "v50" : "v311"; });

TEST_F(MqttClientTest, KeepAlivePingsOnlyAfterSendSilence) {
  auto o = opts("pinger");
  o.keep_alive = 1;
  mqtt::Client c(loop, o);
  c.start();
  ASSERT_TRUE(run_until(loop, [&] { return c.is_connected(); }, 5s));
  // Publishing every 300 ms is traffic: no PINGREQ meanwhile.
  for (int i = 0; i < 6; ++i) {
    c.publish(publish_of("corio/busy", "x", 0));
    run_until(loop, [] { return false; }, 300ms);
  }
  EXPECT_EQ(0, broker->count("Received PINGREQ from pinger"));
  // Then silence: a PINGREQ each second, each answered (the connection stays up).
  run_until(loop, [] { return false; }, 3500ms);
  int pings = broker->count("Received PINGREQ from pinger");
  EXPECT_GE(pings, 2);
  EXPECT_LE(pings, 4);
  EXPECT_TRUE(c.is_connected());
  c.disconnect();
  ASSERT_TRUE(run_until(loop, [&] { return c.is_finished(); }, 5s));
}

TEST_F(MqttClientTest, StoppedBrokerIsDeclaredDeadThenReconnected) {
  auto o = opts("watchful");
  o.keep_alive = 1;
  o.ping_deadline = 1s;
  o.reconnect = 200ms;
  mqtt::Client c(loop, o);
  std::vector<std::pair<std::error_code, std::string>> errors;
  c.on_error = [&](std::error_code ec, const std::string& why) { errors.emplace_back(ec, why); };
  int connects = 0, closes = 0;
  c.on_connect = [&](const mqtt::Connack&) { ++connects; };
  c.on_close = [&](std::error_code) { ++closes; };
  c.start();
  ASSERT_TRUE(run_until(loop, [&] { return connects == 1; }, 5s));
  broker->pause();
  auto t0 = Loop::now();
  ASSERT_TRUE(run_until(loop, [&] { return closes == 1; }, 6s));
  auto dead_after = Loop::now() - t0;
  EXPECT_LE(dead_after, 3500ms);  // at most keep_alive (the ping) + the deadline, and slack
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(std::error_code(mqtt::ClientErrc::keep_alive_timeout), errors.front().first) << errors.front().second;
  EXPECT_NE(std::string::npos, errors.front().second.find("keep-alive timeout")) << errors.front().second;
  broker->resume();
  ASSERT_TRUE(run_until(loop, [&] { return connects == 2; }, 10s));
  EXPECT_TRUE(c.is_connected());
  c.disconnect();
  ASSERT_TRUE(run_until(loop, [&] { return c.is_finished(); }, 5s));
}

TEST_F(MqttClientTest, InFlightQos1And2OfAKeptSessionAreDeliveredAfterReconnect) {
  // A subscriber with a session of its own counts what arrives.
  auto so = opts("counter");
  so.clean = false;
  mqtt::Client sub(loop, so);
  std::map<std::string, int> seen;
  sub.on_message = [&](mqtt::Publish& m) { ++seen[m.payload]; };
  sub.start();
  std::error_code ec;
  auto s = [&]() -> Task<void> {
    if ((ec = co_await sub.connected(5s))) co_return;
    ec = (co_await sub.subscribed(subscribe_to("corio/kept", 2))).error;
  };
  ASSERT_TRUE(run(loop, s()));
  ASSERT_FALSE(ec) << ec.message();

  auto o = opts("keeper");
  o.clean = false;
  o.keep_alive = 1;
  o.ping_deadline = 500ms;
  o.reconnect = 100ms;
  mqtt::Client c(loop, o);
  int connects = 0;
  std::vector<bool> present;
  c.on_connect = [&](const mqtt::Connack& a) { ++connects, present.push_back(a.session_present); };
  c.start();
  ASSERT_TRUE(run_until(loop, [&] { return connects == 1; }, 5s));
  // The broker stops: the messages go out on a connection that will be declared dead.
  broker->pause();
  std::vector<std::error_code> done(4, std::error_code(corio::Error::timeout));
  for (int i = 0; i < 4; ++i)
    c.publish(publish_of("corio/kept", "m" + std::to_string(i), std::uint8_t(1 + i % 2)), [&done, i](std::error_code e) { done[i] = e; });
  run_until(loop, [] { return false; }, 300ms);
  EXPECT_EQ(4u, c.in_flight());
  broker->resume();  // its side of the old connection still there: the session is kept
  ASSERT_TRUE(run_until(loop, [&] { return c.in_flight() == 0; }, 10s)) << c.in_flight();
  for (auto& e : done) EXPECT_FALSE(e) << e.message();
  ASSERT_TRUE(run_until(loop, [&] { return seen.size() == 4; }, 5s));
  // QoS 2 exactly once; QoS 1 at least once.
  EXPECT_EQ(1, seen["m1"]);
  EXPECT_EQ(1, seen["m3"]);
  EXPECT_GE(seen["m0"], 1);
  EXPECT_GE(seen["m2"], 1);
  c.disconnect();
  sub.disconnect();
  ASSERT_TRUE(run_until(loop, [&] { return c.is_finished() && sub.is_finished(); }, 5s));
}

TEST_F(MqttClientTest, LastWillIsPublishedWhenAClientDiesNotWhenItDisconnects) {
  mqtt::Client watcher(loop, opts("watcher"));
  std::vector<std::string> wills;
  watcher.on_message = [&](mqtt::Publish& m) { wills.push_back(m.payload); };
  watcher.start();
  watcher.subscribe(subscribe_to("corio/will/#", 1));
  ASSERT_TRUE(watch(loop, [&] { return broker->count("Sending SUBACK to watcher") == 1; }, 5s));
  for (const char* name : {"polite", "rude"}) {
    auto o = opts(name);
    o.will = mqtt::Will{std::string("corio/will/") + name, std::string(name) + " is gone", 1, false, {}};
    auto c = std::make_unique<mqtt::Client>(loop, o);
    c->start();
    ASSERT_TRUE(run_until(loop, [&] { return c->is_connected(); }, 5s));
    if (std::string(name) == "polite") {
      c->disconnect();
      ASSERT_TRUE(run_until(loop, [&] { return c->is_finished(); }, 5s));
    }
    c.reset();  // "rude": the socket closes without DISCONNECT
  }
  ASSERT_TRUE(run_until(loop, [&] { return !wills.empty(); }, 5s));
  run_until(loop, [] { return false; }, 200ms);
  EXPECT_EQ(std::vector<std::string>{"rude is gone"}, wills);
  watcher.disconnect();
  ASSERT_TRUE(run_until(loop, [&] { return watcher.is_finished(); }, 5s));
}

TEST_F(MqttClientTest, MqttsAgainstMosquittosTlsListenerVerified) {
  Mosquitto tls_broker(true);
  ASSERT_TRUE(tls_broker.ok()) << tls_broker.error;
  corio::TlsParams p;
  p.cafile = tls_broker.ca;
  std::string why;
  auto ctx = corio::TlsContext::create(p, &why);
  ASSERT_FALSE(ctx.error) << why;
  for (bool good_name : {true, false}) {
    mqtt::Options o;
    o.host = "127.0.0.1";
    if (!good_name) o.servername = "wrong.example";  // the certificate names 127.0.0.1 and localhost
    o.port = tls_broker.tls_port;
    o.tls = ctx.value;
    o.client_id = "secure";
    mqtt::Client c(loop, o);
    std::string error;
    c.on_error = [&](std::error_code, const std::string& w) { error = w; };
    std::string got;
    c.on_message = [&](mqtt::Publish& m) { got = m.payload; };
    c.start();
    if (!good_name) {
      ASSERT_TRUE(run_until(loop, [&] { return !error.empty(); }, 5s));
      EXPECT_NE(std::string::npos, error.find("certificate verify failed")) << error;
      EXPECT_FALSE(c.is_connected());
      continue;
    }
    c.subscribe(subscribe_to("corio/secure", 1));
    c.publish(publish_of("corio/secure", "over tls", 1));
    ASSERT_TRUE(run_until(loop, [&] { return got == "over tls"; }, 5s)) << error;
    c.disconnect();
    ASSERT_TRUE(run_until(loop, [&] { return c.is_finished(); }, 5s));
  }
}

TEST_F(MqttClientTest, TwoHundredClientsInOneLoopExchangeMessages) {
  constexpr int kClients = 200;
  std::list<mqtt::Client> clients;
  int connected = 0, received = 0, subscribed = 0;
  for (int i = 0; i < kClients; ++i) {
    auto& c = clients.emplace_back(loop, opts("many-" + std::to_string(i)));
    c.on_connect = [&](const mqtt::Connack&) { ++connected; };
    c.on_message = [&](mqtt::Publish&) { ++received; };
    c.start();
    c.subscribe(subscribe_to("corio/many/" + std::to_string(i), 1),
                [&](std::error_code ec, const mqtt::SubAck&) { subscribed += !ec; });
  }
  ASSERT_TRUE(run_until(loop, [&] { return subscribed == kClients; }, 20s)) << subscribed;
  EXPECT_EQ(kClients, connected);
  // Each sends one message to its neighbour's topic.
  int i = 0;
  for (auto& c : clients) c.publish(publish_of("corio/many/" + std::to_string((i++ + 1) % kClients), "hi", 1));
  ASSERT_TRUE(run_until(loop, [&] { return received == kClients; }, 20s)) << received;
  for (auto& c : clients) c.disconnect();
  ASSERT_TRUE(run_until(loop, [&] {
    for (auto& c : clients)
      if (!c.is_finished()) return false;
    return true;
  }, 10s));
}

TEST_F(MqttClientTest, RequestsWaitForTheConnectionAndDisconnectFailsThem) {
  mqtt::Client c(loop, opts("patient"));
  std::error_code early;
  c.publish(publish_of("corio/early", "before start", 1), [&](std::error_code ec) { early = ec; });
  std::string got;
  c.on_message = [&](mqtt::Publish& m) { got = m.payload; };
  c.subscribe(subscribe_to("corio/early", 1));
  c.start();
  ASSERT_TRUE(run_until(loop, [&] { return c.is_connected() && c.in_flight() == 0; }, 5s));
  EXPECT_FALSE(early) << early.message();
  c.disconnect();
  std::error_code late;
  c.publish(publish_of("corio/late", "after disconnect", 1), [&](std::error_code ec) { late = ec; });
  EXPECT_EQ(std::error_code(mqtt::ClientErrc::disconnected), late);
  ASSERT_TRUE(run_until(loop, [&] { return c.is_finished(); }, 5s));
  // An unreachable broker: connected() says why, within its timeout.
  auto o = opts("lonely");
  o.port = corio_test::free_tcp_port();
  mqtt::Client none(loop, o);
  none.start();
  std::error_code ec;
  auto body = [&]() -> Task<void> { ec = co_await none.connected(2s); };
  ASSERT_TRUE(run(loop, body()));
  EXPECT_EQ(std::error_code(corio::Error::refused), ec) << ec.message();
}

// ---- a fake broker: what a real one must not send ----

struct FakeBroker {
  corio::Listener listener;
  std::uint16_t port = 0;
  explicit FakeBroker(Loop& loop) {
    auto r = corio::Listener::bind(loop, "127.0.0.1", 0);
    listener = std::move(r.value);
    port = listener.address().port();
  }
};

// Accepts one client, answers its CONNECT with a CONNACK, then sends `then` and (if asked)
// closes.
const std::string kConnack("\x20\x02\x00\x00", 4);

Task<void> misbehave(FakeBroker& b, std::string then, bool close_after) {
  auto [ec, s] = co_await b.listener.accept(5s);
  if (ec) co_return;
  char buf[512];
  auto r = co_await s.read_some(buf, sizeof buf, 5s);  // the CONNECT
  if (r.error) co_return;
  co_await s.write_all(kConnack, 5s);
  co_await s.write_all(then, 5s);
  if (close_after) {
    s.close();
    co_return;
  }
  co_await s.read_some(buf, sizeof buf, 5s);  // until the client closes
}

TEST_F(MqttClientTest, BadInputFromTheBrokerIsAClearErrorAndTheLoopGoesOn) {
  struct Case {
    const char* name;
    std::string bytes;
    bool close_after;
    const char* expect;  // in the error message
  };
  const std::vector<Case> cases = {
      {"remaining length over 4 bytes", std::string("\x30\xff\xff\xff\xff\x01", 6), false, "malformed"},
      {"oversized packet", std::string("\x30\xff\xff\xff\x7f", 5), false, "too large"},
      {"PUBACK for an id never used", std::string("\x40\x02\x12\x34", 4), false, "never used"},
      {"PUBCOMP for an id never used", std::string("\x70\x02\x00\x07", 4), false, "never used"},
      {"a packet type 0", std::string("\x00\x00", 2), false, ""},
      {"a CONNECT from the broker", std::string("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", 14), false, "must not"},
      {"closed in the middle of a PUBLISH", std::string("\x30\x10\x00\x03" "abc", 7), true, "closed"},
  };
  for (const auto& k : cases) {
    FakeBroker fake(loop);
    corio::spawn(loop, misbehave(fake, k.bytes, k.close_after));
    mqtt::Options o;
    o.port = fake.port;
    o.client_id = "victim";
    o.max_packet_size = 1024 * 1024;
    mqtt::Client c(loop, o);
    std::vector<std::string> errors;
    c.on_error = [&](std::error_code, const std::string& why) { errors.push_back(why); };
    bool closed = false;
    c.on_close = [&](std::error_code) { closed = true; };
    c.start();
    // A timer of the test's ticks meanwhile: the loop is not stuck.
    int ticks = 0;
    corio::Timer tick(loop);
    tick.start(10ms, [&] { ++ticks; }, 10ms);
    ASSERT_TRUE(run_until(loop, [&] { return closed; }, 5s)) << k.name;
    EXPECT_TRUE(run_until(loop, [&] { return ticks > 0; }, 1s));
    tick.stop();
    ASSERT_EQ(1u, errors.size()) << k.name;
    EXPECT_NE(std::string::npos, errors[0].find(k.expect)) << k.name << ": " << errors[0];
    EXPECT_FALSE(c.is_connected());
    fake.listener.close();
    run_until(loop, [] { return false; }, 20ms);
  }
}

}  // namespace

// ---- MQTT 5 limits, against a scripted broker that speaks through the codec ----

// A broker for one 5.0 client: CONNACK with `props`, then each packet the client sends is
// decoded into `seen` and answered by `answer` (which may queue packets into `out`).
struct Scripted {
  FakeBroker fake;
  mqtt::Properties connack_props;
  std::vector<mqtt::Packet> seen;
  std::function<void(const mqtt::Packet&, std::vector<mqtt::Packet>& out)> answer;
  std::vector<mqtt::Packet> first;  // sent right after the CONNACK
  bool done = false;
  explicit Scripted(Loop& loop) : fake(loop) {}
};

Task<void> serve_scripted(Scripted& sc) {
  auto [ec, s] = co_await sc.fake.listener.accept(5s);
  if (ec) co_return;
  std::string in;
  bool connected = false;
  for (;;) {
    std::size_t need = 0;
    auto h = mqtt::read_header(in, 1 << 20, need);
    if (!h.error && need == 0 && in.size() >= h.value.size + h.value.remaining) {
      mqtt::Packet p;
      std::error_code dec = mqtt::decode(h.value, std::string_view(in).substr(h.value.size, h.value.remaining),
                                         mqtt::Version::v50, p);
      in.erase(0, h.value.size + h.value.remaining);
      if (dec) break;
      std::vector<mqtt::Packet> out;
      if (!connected) {
        connected = true;
        mqtt::Connack ack;
        ack.props = sc.connack_props;
        out.push_back(ack);
        for (auto& f : sc.first) out.push_back(f);
      } else {
        sc.seen.push_back(p);
        if (sc.answer) sc.answer(p, out);
      }
      std::string bytes;
      for (auto& o : out) mqtt::encode(o, mqtt::Version::v50, bytes);
      if (!bytes.empty() && co_await s.write_all(bytes, 5s)) break;
      continue;
    }
    if (h.error) break;
    char buf[4096];
    auto r = co_await s.read_some(buf, sizeof buf, 5s);
    if (r.error) break;
    in.append(buf, r.value);
  }
  sc.done = true;
}

mqtt::Options v5(std::uint16_t port, const char* id) {
  mqtt::Options o;
  o.port = port;
  o.client_id = id;
  o.version = mqtt::Version::v50;
  return o;
}

TEST_F(MqttClientTest, BrokersReceiveMaximumBoundsOurMessagesInFlight) {
  Scripted sc(loop);
  sc.connack_props.set(mqtt::PropertyId::receive_maximum, 2);
  std::size_t most = 0;
  std::vector<std::uint16_t> unacked;
  // The broker acks only once two wait: a client over its quota would show a third.
  sc.answer = [&](const mqtt::Packet& p, std::vector<mqtt::Packet>& out) {
    auto* m = std::get_if<mqtt::Publish>(&p);
    if (!m) return;
    unacked.push_back(m->packet_id);
    most = std::max(most, unacked.size());
    if (unacked.size() < 2) return;
    for (auto id : unacked) out.push_back(mqtt::Ack{mqtt::Type::puback, id, 0, {}});
    unacked.clear();
  };
  corio::spawn(loop, serve_scripted(sc));
  mqtt::Client c(loop, v5(sc.fake.port, "bounded"));
  int acked = 0;
  c.start();
  for (int i = 0; i < 6; ++i)
    c.publish(publish_of("t", "m" + std::to_string(i), 1), [&](std::error_code ec) { acked += !ec; });
  ASSERT_TRUE(run_until(loop, [&] { return acked == 6; }, 5s)) << acked;
  EXPECT_EQ(2u, most);
  c.disconnect();
  ASSERT_TRUE(run_until(loop, [&] { return c.is_finished(); }, 5s));
  sc.fake.listener.close();
  run_until(loop, [&] { return sc.done; }, 2s);
}

TEST_F(MqttClientTest, TopicAliasesBothWaysAndTheBrokersMaximumPacketSize) {
  Scripted sc(loop);
  sc.connack_props.set(mqtt::PropertyId::topic_alias_maximum, 4);
  sc.connack_props.set(mqtt::PropertyId::maximum_packet_size, 200);
  // Towards us: the topic once with alias 3, then the alias alone.
  mqtt::Publish a = publish_of("corio/long/topic/name", "first", 0);
  a.props.set(mqtt::PropertyId::topic_alias, 3);
  mqtt::Publish b = publish_of("", "second", 0);
  b.props.set(mqtt::PropertyId::topic_alias, 3);
  sc.first = {a, b};
  corio::spawn(loop, serve_scripted(sc));
  auto o = v5(sc.fake.port, "aliased");
  o.topic_alias_maximum = 5;
  mqtt::Client c(loop, o);
  std::vector<std::string> got;
  c.on_message = [&](mqtt::Publish& m) { got.push_back(m.topic + "=" + m.payload); };
  c.start();
  ASSERT_TRUE(run_until(loop, [&] { return got.size() == 2; }, 5s));
  EXPECT_EQ((std::vector<std::string>{"corio/long/topic/name=first", "corio/long/topic/name=second"}), got);
  // From us: the second PUBLISH of a topic carries the alias alone.
  for (int i = 0; i < 2; ++i) c.publish(publish_of("corio/out/topic", "x", 0));
  // Over the broker's 200 bytes: refused here, with a clear error, the connection kept.
  std::error_code big;
  c.publish(publish_of("corio/out/topic", std::string(300, 'y'), 1), [&](std::error_code ec) { big = ec; });
  ASSERT_TRUE(run_until(loop, [&] { return sc.seen.size() >= 2; }, 5s));
  EXPECT_EQ(std::error_code(mqtt::Errc::too_large), big);
  auto& p1 = std::get<mqtt::Publish>(sc.seen[0]);
  auto& p2 = std::get<mqtt::Publish>(sc.seen[1]);
  EXPECT_EQ("corio/out/topic", p1.topic);
  EXPECT_EQ("", p2.topic);
  EXPECT_EQ(p1.props.number(mqtt::PropertyId::topic_alias), p2.props.number(mqtt::PropertyId::topic_alias));
  EXPECT_TRUE(c.is_connected());
  c.disconnect();
  ASSERT_TRUE(run_until(loop, [&] { return c.is_finished(); }, 5s));
  sc.fake.listener.close();
  run_until(loop, [&] { return sc.done; }, 2s);
}

TEST_F(MqttClientTest, AnAliasOverOurMaximumOrUnknownIsAProtocolError) {
  for (int alias : {9, 2}) {  // 9 > our maximum of 5; 2 never set
    Scripted sc(loop);
    mqtt::Publish p = publish_of("", "x", 0);
    p.props.set(mqtt::PropertyId::topic_alias, static_cast<std::uint32_t>(alias));
    sc.first = {p};
    corio::spawn(loop, serve_scripted(sc));
    auto o = v5(sc.fake.port, "strict");
    o.topic_alias_maximum = 5;
    mqtt::Client c(loop, o);
    std::string error;
    c.on_error = [&](std::error_code, const std::string& w) { error = w; };
    c.start();
    ASSERT_TRUE(run_until(loop, [&] { return !error.empty(); }, 5s));
    EXPECT_NE(std::string::npos, error.find(alias == 9 ? "over the maximum" : "unknown topic alias")) << error;
    sc.fake.listener.close();
    run_until(loop, [&] { return sc.done; }, 2s);
  }
}

TEST_F(MqttClientTest, HostileRequestsFailAloneAndTheQueueIsBounded) {
  auto o = opts("hostile");
  o.max_queued = 10;
  mqtt::Client c(loop, o);
  std::vector<std::error_code> r(12);
  for (int i = 0; i < 12; ++i) c.publish(publish_of("t", "x", 0), [&r, i](std::error_code ec) { r[i] = ec; });
  EXPECT_EQ(std::error_code(mqtt::ClientErrc::queue_full), r[10]);  // before start: the 11th and 12th
  EXPECT_EQ(std::error_code(mqtt::ClientErrc::queue_full), r[11]);
  c.start();
  ASSERT_TRUE(run_until(loop, [&] { return c.is_connected(); }, 5s));
  std::error_code long_topic, wild, ok = corio::Error::timeout;
  c.publish(publish_of(std::string(70000, 't'), "x", 1), [&](std::error_code ec) { long_topic = ec; });
  c.publish(publish_of("a/#", "x", 1), [&](std::error_code ec) { wild = ec; });
  c.publish(publish_of("fine", "x", 1), [&](std::error_code ec) { ok = ec; }  );
  ASSERT_TRUE(run_until(loop, [&] { return c.in_flight() == 0 && ok != std::error_code(corio::Error::timeout); }, 5s));
  EXPECT_TRUE(long_topic) << "a 70000-byte topic";
  EXPECT_TRUE(wild) << "a wildcard in a PUBLISH topic";
  EXPECT_FALSE(ok) << ok.message();
  EXPECT_TRUE(c.is_connected());
  c.disconnect();
  ASSERT_TRUE(run_until(loop, [&] { return c.is_finished(); }, 5s));
}

TEST_F(MqttClientTest, MessagesAsAnAsyncStreamWithoutOnMessage) {
  mqtt::Client c(loop, opts("streamer"));
  c.start();
  std::vector<std::string> got;
  std::error_code last;
  corio::Duration waited{};
  auto body = [&]() -> Task<void> {
    if (co_await c.connected(5s)) co_return;
    if ((co_await c.subscribed(subscribe_to("corio/stream", 1))).error) co_return;
    for (int i = 0; i < 3; ++i) c.publish(publish_of("corio/stream", "m" + std::to_string(i), 1));
    for (int i = 0; i < 3; ++i) {
      auto m = co_await c.message(5s);
      if (m.error) co_return;
      got.push_back(m.value.payload);
    }
    auto t0 = Loop::now();
    auto none = co_await c.message(100ms);  // nothing more comes: a timeout, not a hang
    waited = Loop::now() - t0;
    last = none.error;
  };
  ASSERT_TRUE(run(loop, body()));
  EXPECT_EQ((std::vector<std::string>{"m0", "m1", "m2"}), got);
  EXPECT_EQ(std::error_code(corio::Error::timeout), last);
  EXPECT_GE(waited, 100ms);
  c.disconnect();
  ASSERT_TRUE(run_until(loop, [&] { return c.is_finished(); }, 5s));
  // After the end, a wait answers at once.
  std::error_code after;
  auto end = [&]() -> Task<void> { after = (co_await c.message(5s)).error; };
  ASSERT_TRUE(run(loop, end(), 1s));
  EXPECT_EQ(std::error_code(mqtt::ClientErrc::disconnected), after);
}
