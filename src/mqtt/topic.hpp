// The rules for topic names (what a message is published to) and topic filters (what a
// subscription matches), shared by the decoder and the encoder: what one refuses to read,
// the other refuses to write.
#pragma once
#include <string_view>

namespace corio::mqtt::topic {

// A topic name carries no wildcard. (Emptiness is the caller's rule: MQTT 5 allows an empty
// topic in a PUBLISH that carries a topic alias.)
inline bool valid_name(std::string_view t) noexcept { return t.find_first_of("+#") == std::string_view::npos; }

// A filter is not empty; '+' fills a whole level; '#' fills the last one.
inline bool valid_filter(std::string_view f) noexcept {
  if (f.empty()) return false;
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '+' && f[i] != '#') continue;
    bool level_start = i == 0 || f[i - 1] == '/';
    bool level_end = i + 1 == f.size() || f[i + 1] == '/';
    if (!level_start || !level_end) return false;
    if (f[i] == '#' && i + 1 != f.size()) return false;
  }
  return true;
}

}  // namespace corio::mqtt::topic
