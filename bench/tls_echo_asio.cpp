// tls_echo_asio.cpp - the peer of `echo PORT CERT KEY`: ../shared/bench/echo_asio.cpp over
// asio::ssl (OpenSSL). usage: tls_echo_asio PORT CERT KEY (binds 127.0.0.1). Single-threaded.
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <cstdio>
#include <cstdlib>

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using tls_stream = asio::ssl::stream<tcp::socket>;

static awaitable<void> echo(tls_stream s) {
    try {
        co_await s.async_handshake(asio::ssl::stream_base::server, use_awaitable);
        char data[16384];
        for (;;) {
            std::size_t n = co_await s.async_read_some(asio::buffer(data), use_awaitable);
            co_await asio::async_write(s, asio::buffer(data, n), use_awaitable);
        }
    } catch (const std::exception&) {  // EOF / reset / a failed handshake: drop it
    }
}

static awaitable<void> listener(tcp::acceptor acceptor, asio::ssl::context& tls) {
    for (;;) {
        tcp::socket s = co_await acceptor.async_accept(use_awaitable);
        s.set_option(tcp::no_delay(true));
        asio::co_spawn(acceptor.get_executor(), echo(tls_stream(std::move(s), tls)), asio::detached);
    }
}

int main(int argc, char** argv) {
    if (argc != 4) { std::fprintf(stderr, "usage: %s PORT CERT KEY\n", argv[0]); return 2; }
    try {
        asio::io_context ctx(1);
        asio::ssl::context tls(asio::ssl::context::tls_server);
        tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
        tls.use_certificate_chain_file(argv[2]);
        tls.use_private_key_file(argv[3], asio::ssl::context::pem);
        tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), (unsigned short)std::atoi(argv[1]));
        asio::co_spawn(ctx, listener(tcp::acceptor(ctx, ep), tls), asio::detached);
        ctx.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tls_echo_asio: %s\n", e.what());
        return 1;
    }
}
