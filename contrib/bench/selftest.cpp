// haven-bench selftest: the stanza scanner over every split of a stream, and SCRAM test vectors.
#include "selftest.hpp"

#include <cstdio>
#include <string>
#include <vector>

#include "scanner.hpp"
#include "scram.hpp"

namespace bench {

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
    if (!ok) {
        ++failures;
        std::printf("FAIL: %s\n", what.c_str());
    }
}

struct Seen {
    std::vector<std::string> kinds;
    std::vector<std::string> xml;
};

void drain(Scanner& sc, Seen& seen) {
    ScanEvent ev;
    while (sc.next(ev)) {
        const char* k = ev.kind == ScanEvent::Kind::StreamOpen    ? "open"
                        : ev.kind == ScanEvent::Kind::StreamClose ? "close"
                                                                  : "element";
        seen.kinds.push_back(std::string(k) + ":" + std::string(ev.name));
        seen.xml.emplace_back(ev.xml);
    }
    sc.compact();
}

void scanner_tests() {
    const std::string stream =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' id='x>y' version='1.0'>"
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
        "<mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features> \n"
        "<message to='a@b/c' type=\"chat\" id='q&apos;>'><body>hb 0 1 2 x&lt;y</body>"
        "<!-- note <b> --><x xmlns='urn:x'><![CDATA[<not-a-tag>]]></x></message>"
        "<presence/><iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        "<jid>u@h/r</jid></bind></iq></stream:stream>";
    const std::vector<std::string> want = {"open:stream", "element:features", "element:message",
                                           "element:presence", "element:iq", "close:stream"};
    // Every single split point, and byte-at-a-time.
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        Scanner sc;
        Seen seen;
        sc.append(std::string_view(stream).substr(0, cut));
        drain(sc, seen);
        sc.append(std::string_view(stream).substr(cut));
        drain(sc, seen);
        check(seen.kinds == want, "split at " + std::to_string(cut));
    }
    Scanner sc;
    Seen seen;
    for (char c : stream) {
        sc.append(std::string_view(&c, 1));
        drain(sc, seen);
    }
    check(seen.kinds == want, "byte at a time");
    check(seen.xml.size() == 6 && seen.xml[2].starts_with("<message") &&
              seen.xml[2].ends_with("</message>"),
          "message element text");
    if (seen.xml.size() == 6) {
        check(tag_attr(seen.xml[2], "type") == "chat", "double-quoted attribute");
        check(tag_attr(seen.xml[2], "id") == "q&apos;>", "attribute with '>'");
        check(child_text(seen.xml[2], "body") == "hb 0 1 2 x&lt;y", "body text");
        check(child_text(seen.xml[4], "jid") == "u@h/r", "bind jid");
        check(has_child(seen.xml[1], "mechanisms"), "has_child");
        check(!has_child(seen.xml[1], "starttls"), "has_child negative");
    }
}

void scram_vector(ScramAlg alg, const char* name, const char* nonce, const char* server_first,
                  const char* client_final, const char* server_final) {
    ScramClient c(alg, "user", "pencil", nonce);
    check(c.client_first() == std::string("n,,n=user,r=") + nonce, std::string(name) + " first");
    std::string err;
    check(c.server_first(server_first, err), std::string(name) + " server-first: " + err);
    auto keys = ScramCache::derive(alg, "pencil", c.salt(), c.iterations());
    check(c.client_final(keys) == client_final, std::string(name) + " client-final proof");
    check(c.verify_server_final(server_final), std::string(name) + " server signature");
    check(!c.verify_server_final("v=AAAA"), std::string(name) + " rejects a bad signature");
}

}  // namespace

int selftest() {
    scanner_tests();
    // RFC 5802 §5 and RFC 7677 §3.
    scram_vector(ScramAlg::Sha1, "SCRAM-SHA-1", "fyko+d2lbbFgONRv9qkxdawL",
                 "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                 "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                 "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    scram_vector(ScramAlg::Sha256, "SCRAM-SHA-256", "rOprNGfwEbeRWgbNEkqO",
                 "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
                 "i=4096",
                 "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                 "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                 "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    check(plain_message("u", "p") == std::string("\0u\0p", 4), "PLAIN message");
    std::printf("selftest: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}

}  // namespace bench
