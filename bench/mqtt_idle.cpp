// N MQTT clients (corio::mqtt::Client, keep_alive K s) connected to a broker at
// 127.0.0.1:PORT, then SECS seconds of nothing but their keep-alives: the process's on-CPU
// time (/proc/self/schedstat) and VmRSS per client. usage: mqtt_idle PORT [N K SECS]
#include <corio/mqtt_client.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <list>
#include <string>

static double on_cpu_s() {
  std::ifstream f("/proc/self/schedstat");
  double ns = 0;
  f >> ns;
  return ns / 1e9;
}
static long rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string k;
  long v = -1;
  while (f >> k)
    if (k == "VmRSS:") {
      f >> v;
      break;
    }
  return v;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: mqtt_idle PORT [N K SECS]\n");
    return 2;
  }
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  const int n = argc > 2 ? std::atoi(argv[2]) : 1000;
  const int ka = argc > 3 ? std::atoi(argv[3]) : 5;
  const double secs = argc > 4 ? std::atof(argv[4]) : 30;
  auto& loop = corio::Loop::current();
  std::list<corio::mqtt::Client> clients;
  int connected = 0, closed = 0;
  const long rss0 = rss_kb();
  for (int i = 0; i < n; ++i) {
    corio::mqtt::Options o;
    o.port = port;
    o.client_id = "idle-" + std::to_string(i);
    o.keep_alive = static_cast<std::uint16_t>(ka);
    auto& c = clients.emplace_back(loop, o);
    c.on_connect = [&](const corio::mqtt::Connack&) { ++connected; };
    c.on_close = [&](std::error_code) { ++closed; };
    c.start();
  }
  const corio::TimePoint give_up = corio::Loop::now() + std::chrono::seconds(60);
  while (connected < n && corio::Loop::now() < give_up) loop.run_once(std::chrono::milliseconds(100));
  if (connected < n) {
    std::printf("bench=mqtt_idle impl=corio-cpp clients=%d FAIL connected=%d\n", n, connected);
    return 1;
  }
  loop.run_once(std::chrono::milliseconds(200));  // settle
  const long rss1 = rss_kb();
  const double cpu0 = on_cpu_s();
  const corio::TimePoint end = corio::Loop::now() + corio::from_seconds(secs);
  while (corio::Loop::now() < end) loop.run_once(end - corio::Loop::now());
  const double cpu = on_cpu_s() - cpu0;
  std::printf("bench=mqtt_idle impl=corio-cpp clients=%d keep_alive=%d secs=%.1f cpu_ms=%.1f cpu_pct=%.3f "
              "rss_per_client_b=%.0f rss_mb=%.1f closed=%d\n",
              n, ka, secs, cpu * 1000, 100 * cpu / secs, (rss1 - rss0) * 1024.0 / n, rss1 / 1024.0, closed);
  for (auto& c : clients) c.disconnect();
  const corio::TimePoint stop = corio::Loop::now() + std::chrono::seconds(5);
  while (corio::Loop::now() < stop) {
    bool all = true;
    for (auto& c : clients) all = all && c.is_finished();
    if (all) break;
    loop.run_once(std::chrono::milliseconds(50));
  }
}
