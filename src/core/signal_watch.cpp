// SignalWatch: starting and stopping a watch (the signal source does the blocking and the
// signalfd), and signal names.
#include <corio/signal_watch.hpp>

#include "signal_source.hpp"

#include <csignal>
#include <cstdlib>
#include <memory>
#include <strings.h>

namespace corio {

std::error_code SignalWatch::start() {
  if (active()) return {};
  Loop& loop = this->loop();
  if (!loop.signals_) loop.signals_ = std::make_unique<SignalSource>(loop);
  if (auto ec = loop.signals_->add(this)) return ec;
  start_handle();
  return {};
}

void SignalWatch::stop() noexcept {
  if (!active()) return;
  stop_handle();
  loop().signals_->remove(this);
}

int signal_number(const char* name) noexcept {
  static const struct {
    const char* name;
    int signo;
  } table[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},     {"TRAP", SIGTRAP},
      {"ABRT", SIGABRT}, {"BUS", SIGBUS},       {"FPE", SIGFPE},   {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},
      {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
      {"CONT", SIGCONT}, {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},   {"URG", SIGURG},
      {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
      {"IO", SIGIO},     {"PWR", SIGPWR},       {"SYS", SIGSYS},   {"KILL", SIGKILL},   {"STOP", SIGSTOP},
  };
  if (strncasecmp(name, "SIG", 3) == 0) name += 3;
  for (const auto& e : table)
    if (strcasecmp(name, e.name) == 0) return e.signo;
  if (strncasecmp(name, "RTMIN+", 6) == 0 || strncasecmp(name, "RTMAX-", 6) == 0) {
    char* end;
    long k = std::strtol(name + 6, &end, 10);
    int s = name[3] == 'I' || name[3] == 'i' ? SIGRTMIN + static_cast<int>(k) : SIGRTMAX - static_cast<int>(k);
    if (*end == '\0' && k >= 0 && s >= SIGRTMIN && s <= SIGRTMAX) return s;
  }
  if (strcasecmp(name, "RTMIN") == 0) return SIGRTMIN;
  if (strcasecmp(name, "RTMAX") == 0) return SIGRTMAX;
  return 0;
}

}  // namespace corio
