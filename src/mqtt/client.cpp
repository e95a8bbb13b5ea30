// The MQTT client's state machine. One connection at a time, driven by two owned
// coroutines: the reader (connect, CONNACK, then every packet) and the writer (flushes what
// requests and acknowledgements queued in `out`). They are destroyed only from a timer
// callback (begin) or with the client, never from inside themselves, so a callback may call
// disconnect() or publish() freely.
#include <corio/mqtt_client.hpp>
#include <corio/stream.hpp>
#include <corio/task.hpp>

#include <algorithm>
#include <list>
#include <random>
#include <unordered_map>
#include <vector>

#include <unistd.h>

namespace corio::mqtt {

namespace {

constexpr std::uint16_t kPortPlain = 1883, kPortTls = 8883;

std::string hex(std::uint8_t v) {
  static const char* d = "0123456789abcdef";
  return std::string("0x") + d[v >> 4] + d[v & 15];
}

// CONNACK's 3.1.1 return codes and the common 5.0 reasons, for error messages.
std::string reason_text(std::uint8_t r, Version v) {
  if (v == Version::v311) {
    switch (r) {
      case 1: return "unacceptable protocol version";
      case 2: return "identifier rejected";
      case 3: return "server unavailable";
      case 4: return "bad user name or password";
      case 5: return "not authorized";
    }
  }
  switch (r) {
    case 0x80: return "unspecified error";
    case 0x81: return "malformed packet";
    case 0x82: return "protocol error";
    case 0x83: return "implementation specific error";
    case 0x84: return "unsupported protocol version";
    case 0x85: return "client identifier not valid";
    case 0x86: return "bad user name or password";
    case 0x87: return "not authorized";
    case 0x88: return "server unavailable";
    case 0x89: return "server busy";
    case 0x8A: return "banned";
    case 0x8B: return "server shutting down";
    case 0x8D: return "keep alive timeout";
    case 0x8E: return "session taken over";
    case 0x8F: return "topic filter invalid";
    case 0x90: return "topic name invalid";
    case 0x91: return "packet identifier in use";
    case 0x93: return "receive maximum exceeded";
    case 0x95: return "packet too large";
    case 0x97: return "quota exceeded";
    case 0x99: return "payload format invalid";
    case 0x9A: return "retain not supported";
    case 0x9B: return "QoS not supported";
    case 0x9C: return "use another server";
    case 0x9D: return "server moved";
    case 0x9F: return "connection rate exceeded";
  }
  return "reason " + hex(r);
}

// A request made while it cannot go out yet (no connection, or no send quota).
struct Request {
  Packet packet;  // Publish, Subscribe or Unsubscribe
  std::function<void(std::error_code)> done;
  std::function<void(std::error_code, const SubAck&)> sub_done;
};

// One of our QoS>0 messages, until its last acknowledgement.
struct InFlight {
  Publish p;
  std::function<void(std::error_code)> done;
  bool released = false;  // QoS 2: PUBREC came, PUBREL sent
};

// Distinct per client and per process without a /dev/urandom read per client.
unsigned seed() {
  static thread_local unsigned n = 0;
  auto t = static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count());
  return t ^ (++n * 2654435761u) ^ static_cast<unsigned>(::getpid());
}

}  // namespace

struct Client::State {
  Client& c;
  Loop& loop;
  const Options& o;
  Stream stream;
  Task<void> reader, writer;
  bool started = false, io_alive = false, connected = false, finished = false, closing = false;
  std::error_code close_reason;

  // the writer's side
  std::string out, wbuf;
  std::vector<std::function<void(std::error_code)>> out_done, wdone;  // QoS 0: when written
  std::coroutine_handle<> writer_waits;
  // the reader's side
  std::string in;
  std::size_t in_pos = 0;

  Timer keep_alive_timer, deadline_timer, retry_timer;
  Timer flush_timer;  // wakes the writer on the next turn: what a turn queues goes in one write
  TimePoint last_send{};
  std::uint16_t keep_alive = 0;
  Duration delay{};  // the next reconnect delay, before jitter
  std::minstd_rand rng{seed()};  // for the jitter only: 8 bytes (mt19937's are 5 KB per client)

  // session
  std::uint16_t last_id = 0;
  std::list<InFlight> inflight;  // in the order sent: retransmitted in that order
  std::unordered_map<std::uint16_t, std::list<InFlight>::iterator> by_id;
  std::unordered_map<std::uint16_t, std::function<void(std::error_code, const SubAck&)>> sub_waits;
  std::unordered_map<std::uint16_t, bool> incoming_qos2;  // delivered, PUBREL not yet come: PUBREC sent?
  std::list<Request> queued;     // (a std::deque allocates even empty: 1 KB per idle client)
  std::list<Publish> messages;   // for message() when there is no on_message
  std::vector<std::shared_ptr<Wait<std::error_code>::Slot>> connect_waits;
  std::shared_ptr<Wait<Result<Publish>>::Slot> message_wait;

  // what the broker allows (5.0's CONNACK), for this connection
  std::uint16_t send_quota = 65535;
  std::uint32_t broker_max_packet = 0;  // 0: no limit but the protocol's
  std::uint16_t broker_alias_max = 0;
  std::uint8_t broker_max_qos = 2;
  std::unordered_map<std::string, std::uint16_t> out_aliases;
  std::unordered_map<std::uint16_t, std::string> in_aliases;
  std::string client_id;

  State(Client& client, Loop& l)
      : c(client), loop(l), o(client.opts_), keep_alive_timer(l), deadline_timer(l), retry_timer(l), flush_timer(l),
        client_id(client.opts_.client_id) {
    if (o.reconnect) delay = *o.reconnect;
  }

  ~State() {
    // The coroutines first: their pending operations leave the stream's queues.
    writer_waits = {};
    reader = {};
    writer = {};
  }

  Duration ping_deadline() const { return o.ping_deadline ? *o.ping_deadline : std::chrono::seconds(keep_alive); }

  // ---- the connection's life ----

  void begin() {
    reader = {};
    writer = {};
    writer_waits = {};
    stream = Stream(loop);
    in.clear();
    in_pos = 0;
    io_alive = true;
    closing = false;
    reader = run_connection();
    reader.start();
  }

  // The connection's reader: open it, then every packet until it ends. The opening runs in a
  // frame of its own, gone once the CONNACK is in: an idle client keeps only the read loop's.
  Task<void> run_connection() {
    std::string why;
    Connack ack;
    if (std::error_code ec = co_await open(ack, why)) co_return lost(ec, why);
    connect_done(ack);
    Packet p;
    while (io_alive) {
      if (std::error_code ec = co_await read_packet(p, std::nullopt)) co_return lost(ec, read_failure(ec));
      if (!io_alive) co_return;
      handle(p);
    }
  }

  // TCP (and TLS), CONNECT, CONNACK within connect_timeout -> an error and why, or the CONNACK.
  Task<std::error_code> open(Connack& ack, std::string& why) {
    const TimePoint until = Loop::now() + o.connect_timeout;
    auto left = [&] { return std::max(Duration::zero(), until - Loop::now()); };
    std::uint16_t port = o.port ? o.port : (o.tls ? kPortTls : kPortPlain);
    std::error_code ec = co_await stream.connect(o.host, port, left());
    if (!ec && o.tls && !(ec = stream.start_tls(o.tls, o.servername.empty() ? o.host : o.servername)))
      ec = co_await stream.handshake(left());
    if (ec) {
      why = "connecting to " + o.host + ":" + std::to_string(port) + ": " + ec.message();
      co_return ec;
    }
    stream.set_nodelay();

    Connect pkt;
    pkt.version = o.version;
    pkt.clean = o.clean;
    pkt.keep_alive = o.keep_alive;
    pkt.client_id = client_id;
    pkt.username = o.username;
    pkt.password = o.password;
    pkt.will = o.will;
    pkt.props = o.connect_props;
    if (o.version == Version::v50) {
      pkt.props.set(PropertyId::maximum_packet_size, o.max_packet_size);
      if (o.receive_maximum != 65535) pkt.props.set(PropertyId::receive_maximum, o.receive_maximum);
      if (o.topic_alias_maximum) pkt.props.set(PropertyId::topic_alias_maximum, o.topic_alias_maximum);
    }
    std::string hello;
    if ((ec = encode(pkt, o.version, hello))) {
      why = "CONNECT: " + ec.message();
      co_return ec;
    }
    if ((ec = co_await stream.write_all(hello, left()))) {
      why = "sending CONNECT: " + ec.message();
      co_return ec;
    }
    last_send = Loop::now();

    Packet p;
    if ((ec = co_await read_packet(p, left()))) {
      why = "waiting for CONNACK: " + ec.message();
      co_return ec;
    }
    auto* a = std::get_if<Connack>(&p);
    if (!a) {
      why = std::string("expected CONNACK, got ") + type_name(type_of(p));
      co_return ClientErrc::unexpected_packet;
    }
    if (a->reason != 0) {
      why = "connection refused: " + reason_text(a->reason, o.version);
      co_return ClientErrc::refused;
    }
    ack = std::move(*a);
    co_return std::error_code{};
  }

  std::string read_failure(std::error_code ec) const {
    if (ec == Error::closed) return "connection closed by the broker";
    return ec.message();
  }

  // One whole packet: the fixed header first, its size checked before the body is read.
  Task<std::error_code> read_packet(Packet& p, std::optional<Duration> timeout) {
    for (;;) {
      std::string_view have(in.data() + in_pos, in.size() - in_pos);
      std::size_t need = 0;
      auto h = read_header(have, o.max_packet_size, need);
      if (h.error) co_return h.error;
      if (need == 0 && have.size() >= h.value.size + h.value.remaining) {
        std::error_code ec = decode(h.value, have.substr(h.value.size, h.value.remaining), o.version, p);
        in_pos += h.value.size + h.value.remaining;
        if (in_pos == in.size()) {
          in.clear();
          in_pos = 0;
          if (in.capacity() > 65536) in.shrink_to_fit();  // after a big message, idle small again
        }
        co_return ec;
      }
      if (in_pos > 0 && in_pos * 2 > in.size()) {
        in.erase(0, in_pos);
        in_pos = 0;
      }
      std::size_t want = need ? need - have.size() : h.value.size + h.value.remaining - have.size();
      auto [ec, chunk] = co_await stream.read_chunk(std::max<std::size_t>(want, 4096), timeout);
      if (ec) co_return ec;
      in.append(chunk.data(), chunk.size());
    }
  }

  void connect_done(const Connack& ack) {
    connected = true;
    delay = o.reconnect ? *o.reconnect : Duration::zero();
    keep_alive = o.keep_alive;
    send_quota = 65535;
    broker_max_packet = 0;
    broker_alias_max = 0;
    broker_max_qos = 2;
    out_aliases.clear();
    in_aliases.clear();
    if (o.version == Version::v50) {
      const auto& pr = ack.props;
      if (auto v = pr.number(PropertyId::receive_maximum)) send_quota = static_cast<std::uint16_t>(*v);
      if (auto v = pr.number(PropertyId::maximum_packet_size)) broker_max_packet = *v;
      if (auto v = pr.number(PropertyId::topic_alias_maximum)) broker_alias_max = static_cast<std::uint16_t>(*v);
      if (auto v = pr.number(PropertyId::maximum_qos)) broker_max_qos = static_cast<std::uint8_t>(*v);
      if (auto v = pr.number(PropertyId::server_keep_alive)) keep_alive = static_cast<std::uint16_t>(*v);
      if (const Property* id = pr.find(PropertyId::assigned_client_identifier)) client_id = id->text;
    }
    writer = run_writer();
    writer.start();

    // The session: kept by the broker, our in-flight messages go again, in order;
    // else what it would have carried is lost.
    if (ack.session_present) {
      for (auto& f : inflight) {
        if (f.released) {
          send(Ack{Type::pubrel, f.p.packet_id, 0, {}});
        } else {
          Publish again = f.p;
          again.dup = true;
          send_publish(again);
        }
      }
    } else {
      incoming_qos2.clear();
      fail_inflight(ClientErrc::session_lost);
    }
    arm_keep_alive();
    for (auto& w : std::exchange(connect_waits, {})) resolve<std::error_code>(w, {});
    if (c.on_connect) c.on_connect(ack);
    pump();
  }

  // The end of a connection (or of an attempt): report, then reconnect or stop.
  void lost(std::error_code ec, const std::string& what) {
    if (!io_alive) return;
    io_alive = false;
    const bool was = connected;
    connected = false;
    keep_alive_timer.stop();
    deadline_timer.stop();
    flush_timer.stop();
    stream.close();  // wakes the writer if it writes
    wake_writer();   // and if it waits for bytes: it sees !io_alive and ends
    for (auto& d : std::exchange(wdone, {})) d(ec);
    for (auto& d : std::exchange(out_done, {})) d(ec);
    out.clear();
    // The reconnect is armed before the handlers run: they see a client still active.
    const bool retry = !finished && o.reconnect;
    if (retry) {
      retry_timer.start(jittered(delay), [this] { begin(); });
      delay = std::min(o.reconnect_max, std::max(delay * 2, std::chrono::duration_cast<Duration>(std::chrono::milliseconds(1))));
    }
    const bool quiet = finished && closing;  // our own DISCONNECT, as asked
    if (!quiet && c.on_error) c.on_error(ec, what);
    for (auto& w : std::exchange(connect_waits, {})) resolve<std::error_code>(w, ec);
    if (was && c.on_close) c.on_close(quiet ? std::error_code(ClientErrc::disconnected) : ec);
    if (!retry) give_up(finished ? std::error_code(ClientErrc::disconnected) : ec);
  }

  Duration jittered(Duration d) {
    if (o.jitter <= 0) return d;
    std::uniform_real_distribution<double> u(1 - o.jitter, 1 + o.jitter);
    return std::chrono::duration_cast<Duration>(d * u(rng));
  }

  // Nothing more will go out: every waiting request fails with ec.
  void give_up(std::error_code ec) {
    started = false;
    fail_inflight(ec);
    for (auto& [id, done] : std::exchange(sub_waits, {}))
      if (done) done(ec, SubAck{});
    for (auto& r : std::exchange(queued, {})) fail(r, ec);
    if (message_wait) {
      auto w = std::exchange(message_wait, {});
      resolve<Result<Publish>>(w, {ec, {}});
    }
  }

  void fail_inflight(std::error_code ec) {
    auto list = std::exchange(inflight, {});
    by_id.clear();
    for (auto& f : list)
      if (f.done) f.done(ec);
  }

  void fail(Request& r, std::error_code ec) {
    if (r.done) r.done(ec);
    if (r.sub_done) r.sub_done(ec, SubAck{});
  }

  // ---- writing ----

  struct WriterWait {
    State& s;
    bool await_ready() const noexcept { return !s.out.empty() || !s.io_alive; }
    void await_suspend(std::coroutine_handle<> h) noexcept { s.writer_waits = h; }
    void await_resume() const noexcept {}
  };
  void wake_writer() {
    if (auto h = std::exchange(writer_waits, {})) h.resume();
  }
  void flush_soon() {
    if (writer_waits && !flush_timer.active()) flush_timer.start(Duration::zero(), [this] { wake_writer(); });
  }

  Task<void> run_writer() {
    while (io_alive) {
      while (out.empty() && io_alive) co_await WriterWait{*this};
      if (!io_alive) co_return;
      wbuf.swap(out);
      wdone.swap(out_done);
      std::error_code ec = co_await stream.write_all(wbuf);
      if (!io_alive) co_return;
      if (ec) co_return lost(ec, "writing to the broker: " + ec.message());
      wbuf.clear();
      for (auto& d : std::exchange(wdone, {})) d({});
      if (closing && out.empty()) {  // our DISCONNECT is out
        co_return lost(ClientErrc::disconnected, "disconnected");
      }
    }
  }

  // Queues p's bytes for the writer. A packet over the broker's maximum is refused.
  std::error_code send(const Packet& p) {
    std::size_t before = out.size();
    if (std::error_code ec = encode(p, o.version, out)) return ec;
    if (broker_max_packet && out.size() - before > broker_max_packet) {
      out.resize(before);
      return Errc::too_large;
    }
    last_send = Loop::now();
    flush_soon();
    return {};
  }

  // A PUBLISH as it goes on this connection: a topic alias when the broker allows them.
  std::error_code send_publish(const Publish& p) {
    if (broker_alias_max == 0 || p.topic.empty()) return send(p);
    Publish q = p;
    auto it = out_aliases.find(p.topic);
    if (it != out_aliases.end()) {
      q.topic.clear();
      q.props.set(PropertyId::topic_alias, it->second);
    } else if (out_aliases.size() < broker_alias_max) {
      auto alias = static_cast<std::uint16_t>(out_aliases.size() + 1);
      out_aliases.emplace(p.topic, alias);
      q.props.set(PropertyId::topic_alias, alias);
    }
    return send(q);
  }

  // ---- keep-alive ----

  void arm_keep_alive() {
    if (keep_alive == 0) return;
    keep_alive_timer.start_at(last_send + std::chrono::seconds(keep_alive), [this] { on_keep_alive(); });
  }
  void on_keep_alive() {
    if (!connected) return;
    TimePoint due = last_send + std::chrono::seconds(keep_alive);
    if (Loop::now() >= due) {
      send(Ping{Type::pingreq});
      if (!deadline_timer.active())
        deadline_timer.start(ping_deadline(), [this] {
          lost(ClientErrc::keep_alive_timeout,
               "keep-alive timeout: no answer " + std::to_string(to_seconds(ping_deadline())) + " s after PINGREQ");
        });
    }
    arm_keep_alive();
  }

  // ---- requests ----

  std::uint16_t new_id() {
    for (int i = 0; i < 65535; ++i) {
      last_id = static_cast<std::uint16_t>(last_id % 65535 + 1);
      if (!by_id.count(last_id) && !sub_waits.count(last_id)) return last_id;
    }
    return 0;
  }

  bool blocked(const Request& r) const {
    if (!connected || closing) return true;
    auto* p = std::get_if<Publish>(&r.packet);
    return p && p->qos > 0 && inflight.size() >= send_quota;
  }

  void submit(Request r) {
    if (finished) return fail(r, ClientErrc::disconnected);
    if (!queued.empty() || blocked(r)) {  // behind what waits already: the order holds
      if (queued.size() >= o.max_queued) return fail(r, ClientErrc::queue_full);
      queued.push_back(std::move(r));
      return;
    }
    transmit(r);
  }

  void pump() {
    while (!queued.empty() && !blocked(queued.front())) {
      Request r = std::move(queued.front());
      queued.pop_front();
      transmit(r);
    }
  }

  void transmit(Request& r) {
    if (auto* p = std::get_if<Publish>(&r.packet)) {
      if (p->qos > broker_max_qos) return fail(r, ClientErrc::rejected);
      if (p->qos == 0) {
        if (std::error_code ec = send_publish(*p)) return fail(r, ec);
        if (r.done) out_done.push_back(std::move(r.done));
        return;
      }
      if (!(p->packet_id = new_id())) return fail(r, ClientErrc::queue_full);
      p->dup = false;
      if (std::error_code ec = send_publish(*p)) return fail(r, ec);
      inflight.push_back(InFlight{std::move(*p), std::move(r.done), false});
      by_id.emplace(inflight.back().p.packet_id, std::prev(inflight.end()));
      return;
    }
    std::uint16_t id = new_id();
    if (!id) return fail(r, ClientErrc::queue_full);
    if (auto* s = std::get_if<Subscribe>(&r.packet)) s->packet_id = id;
    if (auto* u = std::get_if<Unsubscribe>(&r.packet)) u->packet_id = id;
    if (std::error_code ec = send(r.packet)) return fail(r, ec);
    sub_waits.emplace(id, std::move(r.sub_done));
  }

  // ---- what the broker sends ----

  void handle(Packet& p) {
    if (!closing) deadline_timer.stop();  // anything from the broker answers a PINGREQ
    if (auto* m = std::get_if<Publish>(&p)) return incoming(*m);
    if (auto* a = std::get_if<Ack>(&p)) return acked(*a);
    if (auto* s = std::get_if<SubAck>(&p)) {
      auto it = sub_waits.find(s->packet_id);
      if (it == sub_waits.end())
        return lost(ClientErrc::unexpected_packet,
                                std::string(type_name(s->type)) + " for packet id " + std::to_string(s->packet_id) +
                                    ", never used");
      auto done = std::move(it->second);
      sub_waits.erase(it);
      bool refused = std::any_of(s->reasons.begin(), s->reasons.end(), [](std::uint8_t r) { return r >= 0x80; });
      if (done) done(refused ? std::error_code(ClientErrc::rejected) : std::error_code{}, *s);
      return;
    }
    if (auto* g = std::get_if<Ping>(&p); g && g->type == Type::pingresp) return;
    if (auto* d = std::get_if<Disconnect>(&p); d && d->type == Type::disconnect) {
      std::string why = "the broker disconnected: " + reason_text(d->reason, Version::v50);
      if (const Property* rs = d->props.find(PropertyId::reason_string)) why += " (" + rs->text + ")";
      return lost(ClientErrc::broker_disconnect, why);
    }
    lost(ClientErrc::unexpected_packet,
                     std::string("a broker must not send ") + type_name(type_of(p)));
  }

  void incoming(Publish& m) {
    if (o.version == Version::v50) {  // topic aliases the broker chose, within our maximum
      if (auto alias = m.props.number(PropertyId::topic_alias)) {
        if (*alias == 0 || *alias > o.topic_alias_maximum)
          return lost(ClientErrc::unexpected_packet, "topic alias " + std::to_string(*alias) +
                                                                     " over the maximum of " +
                                                                     std::to_string(o.topic_alias_maximum));
        auto a = static_cast<std::uint16_t>(*alias);
        if (!m.topic.empty()) {
          in_aliases[a] = m.topic;
        } else {
          auto it = in_aliases.find(a);
          if (it == in_aliases.end())
            return lost(ClientErrc::unexpected_packet, "unknown topic alias " + std::to_string(a));
          m.topic = it->second;
        }
      }
    }
    if (m.qos == 2) {
      auto it = incoming_qos2.find(m.packet_id);
      if (it != incoming_qos2.end()) {  // sent again: delivered once, its PUBREC again if it went
        if (it->second) send(Ack{Type::pubrec, m.packet_id, 0, {}});
        return;
      }
      if (o.version == Version::v50 && incoming_qos2.size() >= o.receive_maximum)
        return lost(ClientErrc::receive_maximum, "the broker sent more than " + std::to_string(o.receive_maximum) +
                                                     " unacknowledged QoS 2 messages");
      incoming_qos2.emplace(m.packet_id, false);
    }
    const std::uint8_t qos = m.qos;
    const std::uint16_t id = m.packet_id;
    deliver(m);
    if (io_alive && !o.manual_ack && qos > 0) ack(qos, id, 0, {});
  }

  void ack(std::uint8_t qos, std::uint16_t id, std::uint8_t reason, Properties props) {
    if (qos == 1) send(Ack{Type::puback, id, reason, std::move(props)});
    if (qos != 2) return;
    auto it = incoming_qos2.find(id);
    if (it == incoming_qos2.end() || it->second) return;  // unknown, or acknowledged already
    it->second = true;
    send(Ack{Type::pubrec, id, reason, std::move(props)});
    if (reason >= 0x80) incoming_qos2.erase(it);  // refused: no PUBREL follows
  }

  void deliver(Publish& m) {
    if (c.on_message) return c.on_message(m);
    if (message_wait) {
      auto w = std::exchange(message_wait, {});
      return resolve<Result<Publish>>(w, {{}, std::move(m)});
    }
    if (messages.size() >= o.max_queued) {
      if (c.on_error) c.on_error(ClientErrc::queue_full, "message dropped: " + std::to_string(o.max_queued) + " unread");
      return;
    }
    messages.push_back(std::move(m));
  }

  void acked(const Ack& a) {
    if (a.type == Type::pubrel) {  // answered always: the PUBCOMP may have been lost before
      incoming_qos2.erase(a.packet_id);
      send(Ack{Type::pubcomp, a.packet_id, 0, {}});
      return;
    }
    auto it = by_id.find(a.packet_id);
    const char* name = type_name(a.type);
    if (it == by_id.end())
      return lost(ClientErrc::unexpected_packet,
                              std::string(name) + " for packet id " + std::to_string(a.packet_id) + ", never used");
    InFlight& f = *it->second;
    bool ok = (a.type == Type::puback && f.p.qos == 1) || (a.type == Type::pubrec && f.p.qos == 2 && !f.released) ||
              (a.type == Type::pubcomp && f.released);
    if (!ok)
      return lost(ClientErrc::unexpected_packet,
                              std::string(name) + " out of turn for packet id " + std::to_string(a.packet_id));
    if (a.type == Type::pubrec && a.reason < 0x80) {
      f.released = true;
      send(Ack{Type::pubrel, a.packet_id, 0, {}});
      return;
    }
    auto done = std::move(f.done);
    inflight.erase(it->second);
    by_id.erase(it);
    if (done) done(a.reason >= 0x80 ? std::error_code(ClientErrc::rejected) : std::error_code{});
    pump();  // a send quota came free
  }

  // ---- waits ----

  template <class T>
  void resolve(const std::shared_ptr<typename Wait<T>::Slot>& w, T v) {
    settle(loop, w, std::move(v));
  }
  // A slot may outlive the client (in a waiting frame): its timer knows only the loop.
  template <class T>
  static void settle(Loop& loop, const std::shared_ptr<typename Wait<T>::Slot>& w, T v) {
    if (w->value) return;
    w->value.emplace(std::move(v));
    if (w->timer) w->timer->stop();
    if (w->waiter)
      loop.call_soon([w] {
        if (auto h = std::exchange(w->waiter, {})) h.resume();
      });
  }
  template <class T>
  std::shared_ptr<typename Wait<T>::Slot> slot(std::optional<Duration> timeout, T on_timeout) {
    auto w = std::make_shared<typename Wait<T>::Slot>();
    if (timeout) {
      w->timer = std::make_unique<Timer>(loop);
      std::weak_ptr<typename Wait<T>::Slot> weak = w;
      w->timer->start(*timeout, [&l = loop, weak, on_timeout] {
        if (auto sp = weak.lock()) settle<T>(l, sp, on_timeout);
      });
    }
    return w;
  }
};

// ---- Client ----

Client::Client(Loop& loop, Options opts) : opts_(std::move(opts)), st_(std::make_unique<State>(*this, loop)) {}
Client::~Client() = default;

void Client::start() {
  if (st_->started || st_->finished) return;
  st_->started = true;
  st_->retry_timer.start(Duration::zero(), [s = st_.get()] { s->begin(); });
}

void Client::publish(Publish p, std::function<void(std::error_code)> done) {
  st_->submit(Request{std::move(p), std::move(done), {}});
}
void Client::subscribe(Subscribe s, std::function<void(std::error_code, const SubAck&)> done) {
  st_->submit(Request{std::move(s), {}, std::move(done)});
}
void Client::unsubscribe(Unsubscribe u, std::function<void(std::error_code, const SubAck&)> done) {
  st_->submit(Request{std::move(u), {}, std::move(done)});
}

void Client::disconnect(std::uint8_t reason, Properties props) {
  State& s = *st_;
  if (s.finished) return;
  s.finished = true;
  s.retry_timer.stop();
  for (auto& r : std::exchange(s.queued, {})) s.fail(r, ClientErrc::disconnected);
  if (s.connected) {
    s.send(Disconnect{Type::disconnect, reason, std::move(props)});
    s.closing = true;  // the writer closes once it is out
    s.deadline_timer.start(s.keep_alive ? s.ping_deadline() : std::chrono::seconds(10),
                           [&s] { s.lost(ClientErrc::disconnected, "disconnected"); });
  } else if (s.io_alive) {
    s.closing = true;
    s.lost(ClientErrc::disconnected, "disconnected");
  } else {
    s.give_up(ClientErrc::disconnected);
  }
}

void Client::acknowledge(const Publish& m, std::uint8_t reason, Properties props) {
  if (st_->connected && m.qos > 0) st_->ack(m.qos, m.packet_id, reason, std::move(props));
}

Client::Wait<std::error_code> Client::connected(std::optional<Duration> timeout) {
  auto w = st_->slot<std::error_code>(timeout, Error::timeout);
  if (st_->connected)
    w->value.emplace();
  else if (st_->finished)
    w->value.emplace(ClientErrc::disconnected);
  else
    st_->connect_waits.push_back(w);
  return Wait<std::error_code>(w);
}

Client::Wait<std::error_code> Client::publish_acked(Publish p) {
  auto w = st_->slot<std::error_code>(std::nullopt, {});
  publish(std::move(p), [s = st_.get(), w](std::error_code ec) { s->resolve<std::error_code>(w, ec); });
  return Wait<std::error_code>(w);
}

Client::Wait<Result<SubAck>> Client::subscribed(Subscribe sub) {
  auto w = st_->slot<Result<SubAck>>(std::nullopt, {});
  subscribe(std::move(sub), [s = st_.get(), w](std::error_code ec, const SubAck& a) {
    s->resolve<Result<SubAck>>(w, {ec, a});
  });
  return Wait<Result<SubAck>>(w);
}

Client::Wait<Result<Publish>> Client::message(std::optional<Duration> timeout) {
  State& s = *st_;
  auto w = s.slot<Result<Publish>>(timeout, {Error::timeout, {}});
  if (!s.messages.empty()) {
    w->value.emplace(Result<Publish>{{}, std::move(s.messages.front())});
    s.messages.pop_front();
  } else if (s.finished && !s.io_alive) {
    w->value.emplace(Result<Publish>{ClientErrc::disconnected, {}});
  } else {
    if (s.message_wait) s.resolve<Result<Publish>>(s.message_wait, {ClientErrc::queue_full, {}});  // one reader
    s.message_wait = w;
  }
  return Wait<Result<Publish>>(w);
}

bool Client::is_connected() const noexcept { return st_->connected; }
bool Client::is_finished() const noexcept { return st_->finished && !st_->io_alive; }
bool Client::is_active() const noexcept { return st_->io_alive || st_->retry_timer.active(); }
std::uint16_t Client::keep_alive() const noexcept { return st_->keep_alive; }
const std::string& Client::client_id() const noexcept { return st_->client_id; }
std::size_t Client::in_flight() const noexcept { return st_->inflight.size(); }

}  // namespace corio::mqtt
