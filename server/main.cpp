// havend: command line (--config, --check-config), signals, listeners and the run loop.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#ifdef HAVEN_MIMALLOC
#include <mimalloc.h>
#endif
#include <sodium.h>

#include "server/core/server.hpp"
#include "server/net/connection_gate.hpp"
#include "server/net/control_socket.hpp"
#include "server/storage/data_dir_lock.hpp"
#include "server/net/listener.hpp"
#include "server/net/tls.hpp"
#include "server/net/tls_records.hpp"
#include "server/net/write_batcher.hpp"

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: havend --config FILE [--check-config]\n"
                 "       havend --print-example-config   (every option with its default)\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path;
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--config" && i + 1 < argc) {
            config_path = argv[++i];
        } else if (a == "--check-config") {
            check_only = true;
        } else if (a == "--print-example-config") {
            haven::ModuleRegistry registry;
            haven::register_builtin_modules(registry);
            std::fputs(haven::config::render_example(haven::all_options(registry)).c_str(), stdout);
            return 0;
        } else if (a == "--help" || a == "-h") {
            usage();
            return 0;
        } else {
            return usage();
        }
    }
    if (config_path.empty()) {
        return usage();
    }
    if (sodium_init() < 0) {
        std::fprintf(stderr, "havend: libsodium failed to initialise\n");
        return 1;
    }
    haven::ModuleRegistry registry;
    try {
        haven::register_builtin_modules(registry);  // a module without options entry throws
    } catch (const std::exception& e) {
        std::fprintf(stderr, "havend: %s\n", e.what());
        return 1;
    }

    std::unique_ptr<haven::config::Config> config;
    haven::net::SslCtxPtr tls;
    try {
        config = std::make_unique<haven::config::Config>(
            haven::config::Config::load_file(config_path, haven::all_options(registry)));
        tls = haven::net::make_server_context(config->get_string("tls", "cert"),
                                              config->get_string("tls", "key"));
        if (config->get_bool("tls", "compact_connections")) {
            haven::net::enable_record_takeover(tls.get());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "havend: %s\n", e.what());
        return 1;
    }
    if (check_only) {
        std::fprintf(stderr, "havend: %s is valid\n", config_path.c_str());
        return 0;
    }
    // One server per data directory, from before the database is opened until exit: a second
    // one would load its modules (which write) and keep its own roles and grants in memory.
    std::optional<haven::storage::DataDirLock> data_lock;
    try {
        const std::filesystem::path dir = config->get_string("server", "data_dir");
        std::filesystem::create_directories(dir);
        data_lock = haven::storage::DataDirLock::try_lock(
            dir, haven::storage::DataDirLock::Mode::Exclusive);
        if (!data_lock) {
            std::fprintf(stderr, "havend: another havend is running on %s (or havenctl is "
                                 "writing to it right now)\n", dir.c_str());
            return 1;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "havend: %s\n", e.what());
        return 1;
    }

    // Before the io_context and everything else: sessions hold its tickets until they go.
    const auto gate_limits = [](const haven::config::Config& cfg) {
        const auto limit = [&](const char* key) {
            return static_cast<std::size_t>(cfg.get_int("limits", key));
        };
        return haven::net::GateLimits{limit("max_unauthenticated_per_address"),
                                      limit("max_unauthenticated"),
                                      limit("max_tls_handshakes_per_address"),
                                      limit("max_tls_handshakes")};
    };
    haven::net::ConnectionGate gate(gate_limits(*config));
    boost::asio::io_context io(1);
    std::unique_ptr<haven::Server> server;
    std::vector<std::shared_ptr<haven::net::Listener>> listeners;
    // One read buffer for every connection: reads are processed synchronously on this loop.
    auto scratch = std::make_unique<std::array<char, 32 * 1024>>();
    std::unique_ptr<haven::net::WriteBatcher> writes;  // after `server`: it may hold sessions
    std::unique_ptr<haven::net::ControlSocket> control;  // before `server` goes: it uses it
    try {
        server = std::make_unique<haven::Server>(io, std::move(*config), registry);
        server->load_modules();
        const auto& cfg = server->config();
        auto address = boost::asio::ip::make_address(cfg.get_string("c2s", "address"));
        writes = std::make_unique<haven::net::WriteBatcher>(
            io.get_executor(), static_cast<unsigned>(cfg.get_int("c2s", "write_batch_turns")));
        auto add = [&](std::int64_t port, bool direct) {
            if (port == 0 && direct) {
                return;
            }
            haven::net::C2sOptions opts{tls.get(), direct,
                                        cfg.get_bool("tls", "compact_connections"), &gate};
            auto l = std::make_shared<haven::net::Listener>(
                *server, boost::asio::ip::tcp::endpoint(address, static_cast<std::uint16_t>(port)),
                opts, haven::net::LoopShared{std::span<char>(*scratch), *writes});
            l->start();
            server->log().info("listening for clients on port ", l->port(),
                               direct ? " (direct TLS)" : " (STARTTLS)");
            listeners.push_back(std::move(l));
        };
        add(cfg.get_int("c2s", "port"), false);
        add(cfg.get_int("c2s", "direct_tls_port"), true);
        control = std::make_unique<haven::net::ControlSocket>(*server,
                                                              haven::control_socket_path(cfg));
        control->start();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "havend: %s\n", e.what());
        return 1;
    }
#ifdef HAVEN_MIMALLOC
    // Also the reference that keeps mimalloc linked (and so interposing malloc) under --as-needed.
    server->log().debug("allocator: mimalloc ", mi_version());
#endif
    server->log().info("havend serving ", server->domain(), " with ",
                       server->loaded_modules().size(), " modules");

    // SIGHUP: re-read the config file; modules re-apply what they can change at runtime (e.g.
    // the peer-support role lists), and so does the connection gate (an admin under a
    // connection flood lowers the caps without dropping everyone who is logged in).
    // A broken file is logged and the running config kept.
    server->reloaded.connect(
        [&](const haven::config::Config& fresh) { gate.set_limits(gate_limits(fresh)); });
    boost::asio::signal_set hangup(io, SIGHUP);
    std::function<void()> wait_for_hangup = [&] {
        hangup.async_wait([&](const boost::system::error_code& ec, int) {
            if (ec) {
                return;
            }
            try {
                auto fresh = haven::config::Config::load_file(config_path,
                                                              haven::all_options(registry));
                server->log().info("SIGHUP: reloading ", config_path);
                server->reloaded.emit(fresh);
            } catch (const std::exception& e) {
                server->log().error("SIGHUP: keeping the running config: ", e.what());
            }
            wait_for_hangup();
        });
    };
    wait_for_hangup();

    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    boost::asio::steady_timer shutdown_timer(io);
    auto shutdown_deadline = std::chrono::steady_clock::now();
    // Polls until every stream has taken its closing tag, or the deadline passes; then drops
    // whatever is left (while the modules are still loaded to see it go) and stops the loop.
    std::function<void()> wait_for_streams = [&] {
        bool done = std::all_of(listeners.begin(), listeners.end(),
                                [](const auto& l) { return l->sessions_finished(); });
        if (!done && std::chrono::steady_clock::now() < shutdown_deadline) {
            shutdown_timer.expires_after(std::chrono::milliseconds(20));
            shutdown_timer.async_wait([&](const boost::system::error_code& ec) {
                if (!ec) {
                    wait_for_streams();
                }
            });
            return;
        }
        for (auto& l : listeners) {
            l->abort_sessions("server shutdown");
        }
        io.stop();
    };
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
        if (ec) {
            return;
        }
        hangup.cancel();
        control->stop();
        server->log().info("signal ", signo, ": closing streams");
        try {
            for (auto& l : listeners) {
                l->stop();
            }
            // RFC 6120 §4.9.3.22: every client stream, logged in or not, ends with
            // <system-shutdown/>. Sessions not from a listener (none yet) go through the registry.
            for (auto& l : listeners) {
                l->close_sessions("system-shutdown");
            }
            std::vector<haven::SessionPtr> open;
            server->sessions().for_each([&](haven::Session& s) { open.push_back(s.shared_from_this()); });
            for (auto& s : open) {
                s->close("system-shutdown");
            }
        } catch (const std::exception& e) {
            // Closing streams failed part-way: still stop (below), never hang on shutdown.
            server->log().error("shutdown: ", e.what());
        }
        shutdown_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        wait_for_streams();
    });
    ::signal(SIGPIPE, SIG_IGN);
    // Sessions, the router and the event bus contain their own failures; this is the last line
    // for anything else a handler lets escape (Asio's documented pattern: run() may be called
    // again after an exception). One stanza must never end the server.
    for (;;) {
        try {
            io.run();
            break;
        } catch (const std::exception& e) {
            server->log().error("event loop: unhandled exception: ", e.what());
        } catch (...) {
            server->log().error("event loop: unhandled exception");
        }
    }
    server->log().info("havend stopped");
    listeners.clear();
    control.reset();
    server.reset();
    writes.reset();  // last: sessions torn down above may still have queued a flush
    return 0;
}
