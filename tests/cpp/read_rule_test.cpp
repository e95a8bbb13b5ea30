// ReadRule, the readers both faces share, over a Transport that hands the bytes over a few
// at a time: the same bytes give the same outcome however they are segmented (a line of
// exactly the limit passes, one byte more is refused, whenever its "\n" comes), and the
// Transport seam (where TLS plugs in) carries every reader.
#include <corio/read_rule.hpp>
#include <corio/stream.hpp>
#include <corio/task.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "net_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Error;
using corio::IoOp;
using corio::ReadRule;
using corio::Socket;
using ReadRuleTest = corio_test::LoopFixture;

// At most `step` bytes per read, straight from the descriptor.
struct Trickle final : corio::Transport {
  explicit Trickle(std::size_t s) : step(s) {}
  IoOp::Status read(int fd, char* buf, std::size_t len, std::size_t& got, std::error_code& ec, bool&) override {
    ssize_t r = ::read(fd, buf, std::min(len, step));
    if (r > 0) {
      got = static_cast<std::size_t>(r);
      return IoOp::Status::done;
    }
    if (r == 0) {
      ec = Error::closed;
      return IoOp::Status::done;
    }
    if (errno == EAGAIN) return IoOp::Status::wait;
    ec = {errno, std::generic_category()};
    return IoOp::Status::done;
  }
  IoOp::Status write(int fd, const char* data, std::size_t len, std::size_t& put, std::error_code& ec) override {
    ssize_t r = ::send(fd, data, len, MSG_NOSIGNAL);
    if (r >= 0) {
      put = static_cast<std::size_t>(r);
      return IoOp::Status::done;
    }
    if (errno == EAGAIN) return IoOp::Status::wait;
    ec = {errno, std::generic_category()};
    return IoOp::Status::done;
  }
  std::size_t step;
};

struct Outcome {
  std::error_code ec;
  std::string text;
};

// Sends `bytes` (then closes if asked) to a socket reading with `rule` through a Trickle.
Outcome read_with(corio::Loop& loop, ReadRule rule, const std::string& bytes, std::size_t step, std::size_t limit,
                  bool close_after = false) {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  Socket so(loop, fds[0]);
  so.set_transport(std::make_unique<Trickle>(step));
  so.set_limit(limit, true);
  EXPECT_EQ(::write(fds[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  if (close_after) ::shutdown(fds[1], SHUT_WR);
  struct Op final : IoOp {
    explicit Op(ReadRule r) : rule(r) {}
    Status step(Socket& s) override { return rule.step(s, error); }
    void finish() override { done = true; }
    ReadRule rule;
    bool done = false;
  } op(rule);
  if (!so.submit(op, corio::Direction::read, 2s)) {
    EXPECT_TRUE(corio_test::run_until(loop, [&] { return op.done; }));
  }
  Outcome out{op.error, ""};
  if (!op.error || (rule.kind == ReadRule::Kind::all && op.error == Error::closed))
    out.text.assign(so.input().view().substr(0, op.rule.take));
  ::close(fds[1]);
  return out;
}

TEST_F(ReadRuleTest, TheLineLimitIsTheSameWhateverTheSegmentation) {
  const std::string exact(1000, 'a'), over(1001, 'b');
  for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{999}, std::size_t{1000}, std::size_t{65536}}) {
    SCOPED_TRACE(step);
    Outcome ok = read_with(loop, ReadRule(ReadRule::Kind::line), exact + "\nnext", step, 1000);
    EXPECT_FALSE(ok.ec) << ok.ec.message();
    EXPECT_EQ(ok.text, exact);
    Outcome no = read_with(loop, ReadRule(ReadRule::Kind::line), over + "\n", step, 1000);
    EXPECT_EQ(no.ec, Error::line_too_long);
    Outcome far = read_with(loop, ReadRule(ReadRule::Kind::line), std::string(5000, 'c') + "\n", step, 1000);
    EXPECT_EQ(far.ec, Error::line_too_long);
  }
}

TEST_F(ReadRuleTest, ExactlyAllAndAvailableOverATrickle) {
  Outcome n = read_with(loop, ReadRule(ReadRule::Kind::exactly, 10), "0123456789rest", 3, 100);
  EXPECT_EQ(n.text, "0123456789");
  Outcome all = read_with(loop, ReadRule(ReadRule::Kind::all), "everything", 2, 100, true);
  EXPECT_EQ(all.ec, Error::closed);  // the end of the stream, with what came before it
  EXPECT_EQ(all.text, "everything");
  Outcome big = read_with(loop, ReadRule(ReadRule::Kind::all), std::string(300, 'x'), 64, 100, true);
  EXPECT_EQ(big.ec, Error::line_too_long);  // limit_all bounds "everything" too
  Outcome any = read_with(loop, ReadRule(ReadRule::Kind::available), "x", 1, 100);
  EXPECT_FALSE(any.ec);
  EXPECT_EQ(any.text, "");
}

TEST_F(ReadRuleTest, UnboundedLimitAcceptsAnyLine) {
  Outcome ok = read_with(loop, ReadRule(ReadRule::Kind::line), std::string(200000, 'z') + "\n", 65536, SIZE_MAX);
  EXPECT_FALSE(ok.ec) << ok.ec.message();
  EXPECT_EQ(ok.text.size(), 200000u);
}

// The C++ face on the same rules: read_all gives everything up to the peer's close, and
// Error::closed when nothing came.
TEST_F(ReadRuleTest, StreamReadAll) {
  auto [a, b] = corio_net_test::stream_pair(loop);
  std::string got;
  std::error_code ec, ec2;
  ASSERT_TRUE(corio_net_test::run_task(loop, [](corio::Stream& x, corio::Stream& y, std::string& out,
                                                std::error_code& e1, std::error_code& e2) -> corio::Task<void> {
    co_await y.write_all("all of it");
    y.close();
    auto r = co_await x.read_all(1s);
    e1 = r.error;
    out = r.value;
    e2 = (co_await x.read_all(1s)).error;
  }(a, b, got, ec, ec2)));
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(got, "all of it");
  EXPECT_EQ(ec2, Error::closed);
}

}  // namespace
