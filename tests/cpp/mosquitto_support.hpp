// A real mosquitto for the C++ MQTT tests: started on a free 127.0.0.1 port with a
// generated config (log_type all, so the tests can read what it received), optionally with a
// TLS listener (certificates made by the openssl CLI), stopped by PID. Every wait is bounded.
#pragma once
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "net_support.hpp"

namespace corio_test {

using corio_net_test::free_tcp_port;

inline bool tcp_listening(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

inline bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

struct Mosquitto {
  std::string dir, ca, log;
  std::uint16_t port = 0, tls_port = 0;
  pid_t pid = -1;
  std::string error;  // why it did not start

  explicit Mosquitto(bool tls = false) {
    char tmpl[] = "/tmp/corio-mosq-XXXXXX";
    dir = mkdtemp(tmpl);
    sh("chmod 0755 " + dir);  // the broker drops root for its own user
    log = dir + "/log";
    port = free_tcp_port();
    std::ostringstream conf;
    conf << "per_listener_settings false\nallow_anonymous true\npersistence false\nlog_type all\n"
         << "log_dest file " << log << "\nlistener " << port << " 127.0.0.1\n";
    if (tls) {
      const std::string q = " >/dev/null 2>&1";
      std::ofstream(dir + "/san.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
      bool ok = sh("cd " + dir + " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=corio-test-ca -keyout ca.key -out ca.pem" + q) &&
                sh("cd " + dir + " && openssl req -newkey rsa:2048 -nodes -subj /CN=server -keyout server.key -out server.csr" + q) &&
                sh("cd " + dir + " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem" + q) &&
                sh("chmod 0644 " + dir + "/*");
      if (!ok) {
        error = "openssl could not make the certificates";
        return;
      }
      ca = dir + "/ca.pem";
      tls_port = free_tcp_port();
      conf << "listener " << tls_port << " 127.0.0.1\ncafile " << ca << "\ncertfile " << dir
           << "/server.pem\nkeyfile " << dir << "/server.key\n";
    }
    std::ofstream(dir + "/mosquitto.conf") << conf.str();
    sh("touch " + log + " && chmod 0666 " + log);
    const char* exe = ::access("/usr/sbin/mosquitto", X_OK) == 0 ? "/usr/sbin/mosquitto" : "/usr/bin/mosquitto";
    const std::string conf_path = dir + "/mosquitto.conf", err_path = dir + "/stderr";
    pid = ::fork();
    if (pid == 0) {  // only async-signal-safe calls until exec (the test may have threads)
      int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) ::dup2(err, 2), ::dup2(err, 1);
      ::execl(exe, exe, "-c", conf_path.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      if (tcp_listening(port) && (!tls_port || tcp_listening(tls_port))) return;
      int st;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    error = "mosquitto did not come up (scripts/bootstrap installs it): " + read(dir + "/stderr");
    stop();
  }
  ~Mosquitto() {
    stop();
    sh("rm -rf " + dir);
  }
  bool ok() const { return error.empty(); }
  void pause() const { ::kill(pid, SIGSTOP); }
  void resume() const { ::kill(pid, SIGCONT); }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGCONT);
    ::kill(pid, SIGTERM);
    int st;  // (mosquitto takes ~2 s to notice SIGTERM; nothing of it needs saving)
    for (int i = 0; i < 10 && ::waitpid(pid, &st, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (::waitpid(pid, &st, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
    }
    pid = -1;
  }
  static std::string read(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  // How many log lines hold `what` (e.g. "Received PINGREQ from me").
  int count(const std::string& what) const {
    std::string text = read(log);
    int n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
    return n;
  }
  std::string client(const char* tool) const {  // mosquitto_pub / mosquitto_sub -h -p
    return std::string(tool) + " -h 127.0.0.1 -p " + std::to_string(port);
  }
};

}  // namespace corio_test
