// MQTT's byte-level encodings: big-endian integers, the variable byte integer, length-prefixed
// fields and UTF-8 strings. A Reader never reads past its input (it answers false instead); a
// Writer either appends or only counts, so that a packet's length is known before it is written.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace corio::mqtt::wire {

inline constexpr std::uint32_t max_varint = 268435455;  // 4 bytes of 7 bits
inline constexpr std::size_t max_field = 65535;          // a u16 length prefix

enum class Varint { ok, incomplete, malformed };

// A variable byte integer at the start of s. A fifth byte is malformed, and so is a longer
// form than needed (0x80 0x00 for 0): MQTT 5 requires the shortest, and refusing the others
// keeps decode-then-encode the identity on the length fields.
inline Varint parse_varint(std::string_view s, std::uint32_t& value, std::size_t& used) noexcept {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    if (i >= s.size()) return Varint::incomplete;
    auto b = static_cast<std::uint8_t>(s[i]);
    v |= static_cast<std::uint32_t>(b & 0x7F) << (7 * i);
    if (!(b & 0x80)) {
      if (i > 0 && b == 0) return Varint::malformed;
      value = v;
      used = i + 1;
      return Varint::ok;
    }
  }
  return Varint::malformed;
}

inline std::size_t varint_size(std::uint32_t v) noexcept {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

// Well-formed UTF-8 (RFC 3629: no overlong form, no surrogate, nothing past U+10FFFF) without
// U+0000, which MQTT forbids in every string.
inline bool valid_utf8(std::string_view s) noexcept {
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  auto end = p + s.size();
  while (p < end) {
    unsigned c = *p++;
    if (c < 0x80) {
      if (c == 0) return false;
      continue;
    }
    std::ptrdiff_t n;
    unsigned lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (end - p < n || *p < lo || *p > hi) return false;
    for (std::ptrdiff_t i = 1; i < n; ++i)
      if ((p[i] & 0xC0) != 0x80) return false;
    p += n;
  }
  return true;
}

class Reader {
 public:
  explicit Reader(std::string_view s) noexcept : s_(s) {}

  bool done() const noexcept { return pos_ == s_.size(); }
  std::size_t left() const noexcept { return s_.size() - pos_; }

  bool u8(std::uint8_t& v) noexcept {
    if (left() < 1) return false;
    v = byte(pos_++);
    return true;
  }
  bool u16(std::uint16_t& v) noexcept {
    if (left() < 2) return false;
    v = static_cast<std::uint16_t>(byte(pos_) << 8 | byte(pos_ + 1));
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v) noexcept {
    if (left() < 4) return false;
    v = std::uint32_t{byte(pos_)} << 24 | std::uint32_t{byte(pos_ + 1)} << 16 |
        std::uint32_t{byte(pos_ + 2)} << 8 | byte(pos_ + 3);
    pos_ += 4;
    return true;
  }
  bool varint(std::uint32_t& v) noexcept {
    std::size_t used = 0;
    if (parse_varint(s_.substr(pos_), v, used) != Varint::ok) return false;
    pos_ += used;
    return true;
  }
  bool take(std::size_t n, std::string_view& v) noexcept {
    if (left() < n) return false;
    v = s_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // A field with a two-byte length before it (a string or binary data).
  bool field(std::string_view& v) noexcept {
    std::uint16_t n;
    return u16(n) && take(n, v);
  }
  std::string_view rest() noexcept {
    auto v = s_.substr(pos_);
    pos_ = s_.size();
    return v;
  }

 private:
  std::uint8_t byte(std::size_t i) const noexcept { return static_cast<std::uint8_t>(s_[i]); }

  std::string_view s_;
  std::size_t pos_ = 0;
};

// Appends to *out, or with no out only counts: the same code sizes a packet and writes it.
// Values are assumed checked (a field within 65535 bytes, a varint within max_varint).
class Writer {
 public:
  explicit Writer(std::string* out = nullptr) noexcept : out_(out) {}

  std::size_t size() const noexcept { return size_; }

  void bytes(std::string_view s) {
    if (out_) out_->append(s);
    size_ += s.size();
  }
  void u8(std::uint8_t v) {
    char b[1] = {static_cast<char>(v)};
    bytes({b, 1});
  }
  void u16(std::uint16_t v) {
    char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
    bytes({b, 2});
  }
  void u32(std::uint32_t v) {
    char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                 static_cast<char>(v)};
    bytes({b, 4});
  }
  void varint(std::uint32_t v) {
    char b[4];
    std::size_t n = 0;
    do {
      auto d = static_cast<std::uint8_t>(v & 0x7F);
      v >>= 7;
      b[n++] = static_cast<char>(v ? d | 0x80 : d);
    } while (v && n < 4);
    bytes({b, n});
  }
  void field(std::string_view s) {
    u16(static_cast<std::uint16_t>(s.size()));
    bytes(s);
  }

 private:
  std::string* out_;
  std::size_t size_ = 0;
};

}  // namespace corio::mqtt::wire
