#!/usr/bin/env python3
"""Writes the seed corpus of the MQTT codec fuzz target (tests/fuzz/corpus/mqtt_packet/).

Each file is one input of tests/fuzz/mqtt_packet_fuzz.cpp: a byte choosing the version
(bit 0: 5.0) and the maximum packet size (bit 1: 64 bytes), then a packet written here by
hand from the MQTT 3.1.1 and 5.0 specifications (not by the codec under test): valid packets
of each type in both versions, and near-misses one byte away from valid. Run it once and
commit the files; it is not part of the build.
"""
import os
import sys

V311, V50, SMALL = 0, 1, 2


def varint(n):
    out = bytearray()
    while True:
        d, n = n & 0x7F, n >> 7
        out.append(d | (0x80 if n else 0))
        if not n:
            return bytes(out)


def u16(n):
    return n.to_bytes(2, "big")


def u32(n):
    return n.to_bytes(4, "big")


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return u16(len(b)) + b


def props(*items):
    body = b"".join(items)
    return varint(len(body)) + body


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


user = b"\x26" + s("k") + s("v")
seeds = {
    # ---- 3.1.1 ----
    "311_connect_min": (V311, packet(0x10, s("MQTT") + b"\x04\x02" + u16(60) + s(""))),
    "311_connect_full": (V311, packet(0x10, s("MQTT") + b"\x04\xee" + u16(10) + s("client") + s("will/t")
                                      + s("bye") + s("user") + s(b"pw\x00\xff"))),
    "311_connack": (V311, packet(0x20, b"\x01\x00")),
    "311_connack_refused": (V311, packet(0x20, b"\x00\x05")),
    "311_publish_qos0": (V311, packet(0x30, s("a/b") + b"hello")),
    "311_publish_qos1_retain": (V311, packet(0x33, s("a/b") + u16(1) + b"x" * 40)),
    "311_publish_qos2_dup": (V311, packet(0x3C, s("caf\u00e9") + u16(65535))),
    "311_puback": (V311, packet(0x40, u16(7))),
    "311_pubrec": (V311, packet(0x50, u16(7))),
    "311_pubrel": (V311, packet(0x62, u16(7))),
    "311_pubcomp": (V311, packet(0x70, u16(7))),
    "311_subscribe": (V311, packet(0x82, u16(2) + s("a/+/c") + b"\x01" + s("#") + b"\x02")),
    "311_suback": (V311, packet(0x90, u16(2) + b"\x01\x80\x00")),
    "311_unsubscribe": (V311, packet(0xA2, u16(3) + s("a/#") + s("+"))),
    "311_unsuback": (V311, packet(0xB0, u16(3))),
    "311_pingreq": (V311, packet(0xC0, b"")),
    "311_pingresp": (V311, packet(0xD0, b"")),
    "311_disconnect": (V311, packet(0xE0, b"")),
    # ---- 5.0 ----
    "50_connect_props": (V50, packet(0x10, s("MQTT") + b"\x05\x8e" + u16(30)
                                     + props(b"\x11" + u32(3600), b"\x21" + u16(20), b"\x27" + u32(1 << 20), user)
                                     + s("c5") + props(b"\x18" + u32(5), b"\x01\x01", b"\x03" + s("text/plain"))
                                     + s("will") + s("gone") + s("u"))),
    "50_connect_auth": (V50, packet(0x10, s("MQTT") + b"\x05\x00" + u16(0)
                                    + props(b"\x15" + s("SCRAM"), b"\x16" + s(b"\x00\x01")) + s("c"))),
    "50_connack_props": (V50, packet(0x20, b"\x00\x00" + props(b"\x12" + s("auto-1"), b"\x13" + u16(20),
                                                           b"\x22" + u16(10), b"\x24\x01", b"\x25\x00",
                                                           b"\x28\x01", b"\x29\x01", b"\x2a\x00", user))),
    "50_connack_refused": (V50, packet(0x20, b"\x00\x87" + props(b"\x1f" + s("not authorized")))),
    "50_publish_props": (V50, packet(0x3B, s("t") + u16(9) + props(b"\x02" + u32(60), b"\x08" + s("reply/to"),
                                                                   b"\x09" + s(b"id"), b"\x0b\x05",
                                                                   b"\x0b\xff\xff\xff\x7f", user) + b"data")),
    "50_publish_alias": (V50, packet(0x30, s("") + props(b"\x23" + u16(1)) + b"p")),
    "50_puback_short": (V50, packet(0x40, u16(1))),
    "50_puback_reason": (V50, packet(0x40, u16(1) + b"\x10")),
    "50_pubrec_props": (V50, packet(0x50, u16(1) + b"\x80" + props(b"\x1f" + s("no"), user))),
    "50_pubrel": (V50, packet(0x62, u16(1) + b"\x92" + props())),
    "50_pubcomp": (V50, packet(0x70, u16(1) + b"\x00")),
    "50_subscribe_options": (V50, packet(0x82, u16(4) + props(b"\x0b\x80\x01") + s("a/+") + b"\x2e"
                                         + s("$share/g/x") + b"\x19")),
    "50_suback": (V50, packet(0x90, u16(4) + props(b"\x1f" + s("ok")) + b"\x00\x01\x02\x80\x97")),
    "50_unsubscribe": (V50, packet(0xA2, u16(5) + props(user) + s("a") + s("b/#"))),
    "50_unsuback": (V50, packet(0xB0, u16(5) + props() + b"\x00\x11")),
    "50_pingreq": (V50, packet(0xC0, b"")),
    "50_disconnect_empty": (V50, packet(0xE0, b"")),
    "50_disconnect_props": (V50, packet(0xE0, b"\x04" + props(b"\x11" + u32(0), b"\x1c" + s("other:1883")))),
    "50_auth": (V50, packet(0xF0, b"\x18" + props(b"\x15" + s("SCRAM"), b"\x16" + s(b"\x01\x02")))),
    # ---- near-misses ----
    "bad_varint_5_bytes": (V311, b"\x30\xff\xff\xff\xff\x01"),
    "bad_varint_non_minimal": (V311, b"\xc0\x80\x00"),
    "bad_flags_pubrel": (V311, packet(0x60, u16(1))),
    "bad_publish_qos3": (V311, packet(0x36, s("t") + u16(1))),
    "bad_packet_id_0": (V311, packet(0x40, u16(0))),
    "bad_utf8_topic": (V311, packet(0x30, s(b"a\xc0\x80"))),
    "bad_wildcard_topic": (V50, packet(0x30, s("a/+") + props())),
    "bad_duplicate_property": (V50, packet(0x20, b"\x00\x00" + props(b"\x13" + u16(1), b"\x13" + u16(2)))),
    "bad_property_here": (V50, packet(0x40, u16(1) + b"\x00" + props(b"\x23" + u16(1)))),
    "bad_auth_in_311": (V311, packet(0xF0, b"")),
    "too_large_small_max": (V50 | SMALL, packet(0x30, s("t") + props() + b"x" * 70)),
    "truncated_connect": (V311, packet(0x10, s("MQTT") + b"\x04\x02" + u16(60) + s("abc"))[:-2]),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "mqtt_packet")
    os.makedirs(out, exist_ok=True)
    for name, (selector, data) in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([selector]) + data)
    print(f"{len(seeds)} seeds in {out}")


if __name__ == "__main__":
    main()
