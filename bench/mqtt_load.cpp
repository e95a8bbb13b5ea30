// Messages per second through a broker at 127.0.0.1:PORT with corio::mqtt::Client: P
// publishers each send M messages of 64 bytes to bench/<i> at QoS Q, each keeping at most
// W unfinished (QoS 0: not yet written; QoS 1: not yet acknowledged), and one subscriber to
// bench/# at QoS Q counts them. The figure: messages received / seconds from the first
// publish to the last arrival. bench/mqtt_load_mosquitto.c is the same load on libmosquitto.
// usage: mqtt_load PORT QOS [P M W]
#include <corio/mqtt_client.hpp>

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <list>
#include <string>

static double cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: mqtt_load PORT QOS [P M W]\n");
    return 2;
  }
  namespace mqtt = corio::mqtt;
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  const auto qos = static_cast<std::uint8_t>(std::atoi(argv[2]));
  const int P = argc > 3 ? std::atoi(argv[3]) : 100, M = argc > 4 ? std::atoi(argv[4]) : 1000;
  const int W = argc > 5 ? std::atoi(argv[5]) : 20;
  const long total = long(P) * M;
  auto& loop = corio::Loop::current();
  auto options = [&](std::string id) {
    mqtt::Options o;
    o.port = port;
    o.client_id = std::move(id);
    o.max_queued = 1 << 20;
    return o;
  };
  mqtt::Client sub(loop, options("load-sub"));
  long received = 0;
  corio::TimePoint last{};
  sub.on_message = [&](mqtt::Publish&) {
    ++received;
    last = corio::Loop::now();
  };
  bool subscribed = false;
  sub.start();
  mqtt::Subscribe s;
  s.subscriptions.push_back({"bench/#", qos, false, false, 0});
  sub.subscribe(std::move(s), [&](std::error_code ec, const mqtt::SubAck&) { subscribed = !ec; });
  std::list<mqtt::Client> pubs;
  int connected = 0;
  for (int i = 0; i < P; ++i) {
    auto& c = pubs.emplace_back(loop, options("load-pub-" + std::to_string(i)));
    c.on_connect = [&](const mqtt::Connack&) { ++connected; };
    c.start();
  }
  const corio::TimePoint give_up = corio::Loop::now() + std::chrono::seconds(60);
  while ((connected < P || !subscribed) && corio::Loop::now() < give_up) loop.run_once(std::chrono::milliseconds(50));
  if (connected < P || !subscribed) {
    std::printf("bench=mqtt_load impl=corio-cpp qos=%d clients=%d FAIL connect\n", qos, P);
    return 1;
  }
  // Each publisher: W in the air, the next when one finishes.
  const std::string payload(64, 'x');
  std::vector<int> sent(static_cast<std::size_t>(P), 0);
  long failed = 0;
  std::function<void(mqtt::Client&, int)> next = [&](mqtt::Client& c, int i) {
    if (sent[i] >= M) return;
    ++sent[i];
    mqtt::Publish p;
    p.topic = "bench/" + std::to_string(i);
    p.payload = payload;
    p.qos = qos;
    c.publish(std::move(p), [&, i](std::error_code ec) {
      failed += bool(ec);
      next(c, i);
    });
  };
  const double cpu0 = cpu_s();
  const corio::TimePoint t0 = corio::Loop::now();
  int i = 0;
  for (auto& c : pubs) {
    for (int w = 0; w < W; ++w) next(c, i);
    ++i;
  }
  const corio::TimePoint end = corio::Loop::now() + std::chrono::seconds(60);
  corio::TimePoint quiet_since = corio::Loop::now();
  long seen = -1;
  while (received < total && corio::Loop::now() < end) {
    loop.run_once(std::chrono::milliseconds(100));
    if (received != seen) seen = received, quiet_since = corio::Loop::now();
    if (corio::Loop::now() - quiet_since > std::chrono::seconds(3)) break;  // the rest is lost
  }
  const double secs = corio::to_seconds(last - t0), cpu = cpu_s() - cpu0;
  std::printf("bench=mqtt_load impl=corio-cpp qos=%d clients=%d msgs=%ld received=%ld failed=%ld secs=%.3f "
              "msgs_per_s=%.0f cpu_s=%.2f\n",
              qos, P, total, received, failed, secs, secs > 0 ? received / secs : 0.0, cpu);
  for (auto& c : pubs) c.disconnect();
  sub.disconnect();
  const corio::TimePoint stop = corio::Loop::now() + std::chrono::seconds(5);
  while (!sub.is_finished() && corio::Loop::now() < stop) loop.run_once(std::chrono::milliseconds(50));
  return received == total ? 0 : 1;
}
