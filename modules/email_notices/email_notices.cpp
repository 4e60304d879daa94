// E-mail notices (README.md): a user sets, confirms and removes an e-mail address with ad-hoc
// commands, and when a message has waited in offline storage for a while with none of the
// user's devices connected, the server mails one notice without sender, content or room.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <unordered_map>

#include <curl/curl.h>
#include <sodium.h>

#include "modules/email_notices/notice_store.hpp"
#include "modules/email_notices/smtp.hpp"
#include "server/core/module.hpp"
#include "server/core/server.hpp"
#include "server/core/texts.hpp"
#include "server/xmpp/namespaces.hpp"
#include "xeps/xep0050_commands.hpp"

namespace haven::email_notices {
namespace {

constexpr std::string_view set_node = "urn:haven:email:set";
constexpr std::string_view confirm_node = "urn:haven:email:confirm";
constexpr std::string_view remove_node = "urn:haven:email:remove";
constexpr std::chrono::seconds tick_interval{5};
constexpr std::int64_t first_retry_s = 30;
// Confirmation mails per account and day: the set command sends mail to an address anybody
// may type in, so it must not become a way to flood someone else's mailbox.
constexpr int max_codes_per_day = 5;

void add_texts(Texts& t) {
    t.set_en_de("email-notice-subject", "New messages on {service}",
                "Neue Nachrichten auf {service}");
    t.set_en_de("email-notice-body",
                "Hello,\n\nyou have new messages on {service}. Open your chat app to read "
                "them.\n\nThis mail says nothing about who wrote or what. You get at most one "
                "such mail in a while; to get none, remove your address in your chat app "
                "(command \"E-mail notices: remove address\").\n",
                "Hallo,\n\ndu hast neue Nachrichten auf {service}. Öffne deine Chat-App, um sie "
                "zu lesen.\n\nDiese Mail sagt nichts darüber, wer geschrieben hat oder was. Du "
                "bekommst höchstens ab und zu eine solche Mail; wenn du keine mehr möchtest, "
                "entferne deine Adresse in deiner Chat-App (Befehl \"E-Mail-Hinweise: Adresse "
                "entfernen\").\n");
    t.set_en_de("email-code-subject", "Your confirmation code for {service}",
                "Dein Bestätigungscode für {service}");
    t.set_en_de("email-code-body",
                "Hello,\n\nyour code is {code}. Enter it in your chat app (command \"E-mail "
                "notices: confirm address\") within {minutes} minutes. If you did not ask for "
                "this, ignore this mail: without the code, nothing happens.\n",
                "Hallo,\n\ndein Code ist {code}. Gib ihn innerhalb von {minutes} Minuten in "
                "deiner Chat-App ein (Befehl \"E-Mail-Hinweise: Adresse bestätigen\"). Wenn du "
                "das nicht angefordert hast, ignoriere diese Mail: ohne den Code passiert "
                "nichts.\n");
    t.set_en_de("email-cmd-set", "E-mail notices: set address", "E-Mail-Hinweise: Adresse setzen");
    t.set_en_de("email-cmd-confirm", "E-mail notices: confirm address",
                "E-Mail-Hinweise: Adresse bestätigen");
    t.set_en_de("email-cmd-remove", "E-mail notices: remove address",
                "E-Mail-Hinweise: Adresse entfernen");
    t.set_en_de("email-set-instructions",
                "When messages wait for you and none of your devices is online, the server can "
                "send you a short mail that says only that (no sender, no content). Enter the "
                "address; you will get a code to confirm it. {status}",
                "Wenn Nachrichten auf dich warten und keins deiner Geräte online ist, kann dir "
                "der Server eine kurze Mail schicken, die nur das sagt (kein Absender, kein "
                "Inhalt). Gib die Adresse ein; du bekommst einen Code, um sie zu bestätigen. "
                "{status}");
    t.set_en_de("email-status-none", "No address is set.", "Es ist keine Adresse gesetzt.");
    t.set_en_de("email-status-confirmed", "Current address: {address} (confirmed).",
                "Aktuelle Adresse: {address} (bestätigt).");
    t.set_en_de("email-status-unconfirmed", "Current address: {address} (not confirmed yet).",
                "Aktuelle Adresse: {address} (noch nicht bestätigt).");
    t.set_en_de("email-field-address", "E-mail address", "E-Mail-Adresse");
    t.set_en_de("email-field-code", "Code from the mail", "Code aus der Mail");
    t.set_en_de("email-confirm-instructions", "Enter the code we sent to {address}.",
                "Gib den Code ein, den wir an {address} geschickt haben.");
    t.set_en_de("email-bad-address", "That is not an e-mail address.",
                "Das ist keine E-Mail-Adresse.");
    t.set_en_de("email-code-sent",
                "A code is on its way to {address}. Confirm it with "
                "\"E-mail notices: confirm address\".",
                "Ein Code ist unterwegs an {address}. Bestätige ihn mit \"E-Mail-Hinweise: "
                "Adresse bestätigen\".");
    t.set_en_de("email-too-many", "Too many codes asked for in a short time; try again later.",
                "Zu viele Codes in kurzer Zeit angefordert; versuch es später noch einmal.");
    t.set_en_de("email-no-pending", "There is no code to confirm: set an address first.",
                "Es gibt keinen Code zu bestätigen: setze zuerst eine Adresse.");
    t.set_en_de("email-code-wrong", "That code is not right.", "Dieser Code stimmt nicht.");
    t.set_en_de("email-code-void",
                "That code is no longer valid (too old or too many tries). Set the address "
                "again for a new one.",
                "Dieser Code gilt nicht mehr (zu alt oder zu viele Versuche). Setze die Adresse "
                "noch einmal für einen neuen.");
    t.set_en_de("email-confirmed", "Confirmed: notices go to {address}.",
                "Bestätigt: Hinweise gehen an {address}.");
    t.set_en_de("email-removed", "Your address is removed; you get no more mails.",
                "Deine Adresse ist entfernt; du bekommst keine Mails mehr.");
    t.set_en_de("email-nothing-to-remove", "No address was set.", "Es war keine Adresse gesetzt.");
}

// Enough to catch typos and anything that could break a mail header; whether the address
// works is what the confirmation code finds out.
bool plausible_address(std::string_view a) {
    const auto at = a.find('@');
    if (a.size() > 254 || at == 0 || at == std::string_view::npos ||
        a.find('@', at + 1) != std::string_view::npos || at > 64) {
        return false;
    }
    const auto domain = a.substr(at + 1);
    if (domain.size() < 3 || domain.find('.') == std::string_view::npos || domain.front() == '.' ||
        domain.back() == '.') {
        return false;
    }
    for (unsigned char c : a) {
        if (c <= 0x20 || c == 0x7f ||
            std::string_view("<>()[]\\,;:\"").find(static_cast<char>(c)) !=
                std::string_view::npos) {
            return false;
        }
    }
    return true;
}

std::string random_code() {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%06u", randombytes_uniform(1000000));
    return buf;
}

std::string read_first_line(const std::string& path) {
    if (path.empty()) {
        return {};
    }
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) {
        throw std::runtime_error("email_notices: cannot read smtp_password_file " + path);
    }
    return line;
}

// Only what is worth a mail: something a person wrote (a body; encrypted messages carry a
// fallback body), never receipts, markers or chat states alone.
bool worth_a_notice(const Element& message) {
    return message.child("body", ns::client);
}

class EmailNotices : public std::enable_shared_from_this<EmailNotices> {
public:
    explicit EmailNotices(ModuleContext& m)
        : m_(m),
          server_(m.server()),
          store_(server_.db(), server_.secret_box()),
          delay_(m.opt_int("delay_s")),
          interval_(m.opt_int("min_interval_s")),
          code_ttl_(m.opt_int("code_ttl_s")),
          code_attempts_(static_cast<int>(m.opt_int("code_attempts"))),
          retry_max_(m.opt_int("retry_max_s")),
          service_(m.opt_string("service_name").empty() ? server_.domain()
                                                        : m.opt_string("service_name")) {
        add_texts(server_.texts());
        curl_global_init(CURL_GLOBAL_DEFAULT);  // at load, while no other thread uses curl
        SmtpSettings smtp;
        smtp.url = m.opt_string("smtp_url");
        smtp.tls = m.opt_string("smtp_tls");
        smtp.user = m.opt_string("smtp_user");
        smtp.password = read_first_line(m.opt_string("smtp_password_file"));
        smtp.ca_file = m.opt_string("smtp_ca_file");
        smtp.from =
            m.opt_string("from").empty() ? "noreply@" + server_.domain() : m.opt_string("from");
        worker_ = std::make_unique<MailWorker>(server_.io(), std::move(smtp));
        for (auto& r : store_.confirmed()) {
            confirmed_[r.user] = Confirmed{r.waiting_since, r.last_notice};
        }
    }

    ~EmailNotices() {
        if (auto* commands = server_.service<xeps::CommandRegistry>()) {
            for (auto node : {set_node, confirm_node, remove_node}) {
                commands->remove(node);
            }
        }
    }

    // Hooks that hold a weak reference to this object (the worker's results arrive later).
    void start() {
        auto weak = weak_from_this();
        auto stored =
            server_.offline_stored.connect([weak](const std::string& user, const Element& stanza) {
                if (auto self = weak.lock()) {
                    self->message_waiting(user, stanza);
                }
            });
        auto bound = server_.resource_bound.connect([weak](Session& s) {
            if (auto self = weak.lock()) {
                self->online(s.jid().local());
            }
        });
        auto deleted = server_.user_deleted.connect([weak](const std::string& user) {
            if (auto self = weak.lock()) {
                self->confirmed_.erase(user);  // the rows go with the account
                self->codes_sent_.erase(user);
            }
        });
        auto advanced = server_.clock_advanced.connect([weak] {
            if (auto self = weak.lock()) {
                self->tick();
            }
        });
        m_.own_connection([&s = server_, stored, bound, deleted, advanced] {
            s.offline_stored.disconnect(stored);
            s.resource_bound.disconnect(bound);
            s.user_deleted.disconnect(deleted);
            s.clock_advanced.disconnect(advanced);
        });
        m_.every(tick_interval, [weak] {
            if (auto self = weak.lock()) {
                self->tick();
            }
        });
        register_commands();
    }

private:
    struct Confirmed {
        std::int64_t waiting_since = 0;
        std::int64_t last_notice = 0;
    };
    struct CodeQuota {
        std::int64_t since = 0;
        int count = 0;
    };

    std::string text(std::string_view key, std::string_view lang) const {
        return server_.texts().get(key, lang);
    }
    std::int64_t now() const { return server_.clock().unix_seconds(); }

    // ---- commands ----

    void register_commands() {
        auto* commands = server_.service<xeps::CommandRegistry>();
        if (!commands) {
            m_.log().warn("email_notices: ad-hoc commands module not loaded");
            return;
        }
        using Run = xeps::CommandStep (EmailNotices::*)(const std::string&, const Element*,
                                                        std::string_view);
        struct Spec {
            std::string_view node;
            std::string_view name_key;
            Run run;
        };
        for (const auto& spec :
             {Spec{set_node, "email-cmd-set", &EmailNotices::run_set},
              Spec{confirm_node, "email-cmd-confirm", &EmailNotices::run_confirm},
              Spec{remove_node, "email-cmd-remove", &EmailNotices::run_remove}}) {
            xeps::AdHocCommand c;
            c.node = std::string(spec.node);
            c.name = text(spec.name_key, "en");
            // Every local account, for itself only (the command acts on the requester).
            c.allowed = [this](const Jid& who, const Jid&) { return server_.is_local(who); };
            c.run = [this, run = spec.run](const Jid& who, const Jid&, const Element* form,
                                           std::string_view lang) {
                return (this->*run)(who.local(), form, lang);
            };
            commands->add(std::move(c));
        }
    }

    static xeps::CommandStep note(std::string text, bool error = false) {
        xeps::CommandStep step;
        step.note = std::move(text);
        step.error = error;
        return step;
    }

    xeps::CommandStep run_set(const std::string& user, const Element* form, std::string_view lang) {
        if (!form) {
            auto current = store_.get(user);
            std::string status = text("email-status-none", lang);
            if (current) {
                status = fill(
                    text(current->confirmed ? "email-status-confirmed" : "email-status-unconfirmed",
                         lang),
                    {{"{address}", current->address}});
            }
            auto x =
                xeps::make_form(text("email-cmd-set", lang),
                                fill(text("email-set-instructions", lang), {{"{status}", status}}));
            xeps::add_field(x, "address", "text-single", text("email-field-address", lang));
            xeps::CommandStep step;
            step.form = std::move(x);
            return step;
        }
        auto address = xeps::form_value(*form, "address");
        if (!plausible_address(address)) {
            return note(text("email-bad-address", lang), true);
        }
        auto& quota = codes_sent_[user];
        if (now() >= quota.since + 86400) {
            quota = CodeQuota{now(), 0};
        }
        if (quota.count >= max_codes_per_day) {
            return note(text("email-too-many", lang), true);
        }
        ++quota.count;
        const auto code = random_code();
        AddressRecord r;
        r.user = user;
        r.address = address;
        r.confirmed = false;  // a new address is unconfirmed, even if the old one was not
        r.code_h = store_.code_hash(user, code);
        r.code_expires = now() + code_ttl_;
        r.attempts = 0;
        r.lang = server_.texts().pick_lang("email-code-body", lang);
        store_.put(r);
        confirmed_.erase(user);
        const std::string minutes = std::to_string((code_ttl_ + 59) / 60);
        store_.add_mail(user, address,
                        fill(text("email-code-subject", r.lang), {{"{service}", service_}}),
                        fill(text("email-code-body", r.lang),
                             {{"{code}", code}, {"{minutes}", minutes}, {"{service}", service_}}),
                        now());
        send_next();
        return note(fill(text("email-code-sent", lang), {{"{address}", address}}));
    }

    xeps::CommandStep run_confirm(const std::string& user, const Element* form,
                                  std::string_view lang) {
        auto r = store_.get(user);
        if (!r || r->code_h.empty()) {
            return note(text("email-no-pending", lang), true);
        }
        if (!form) {
            auto x = xeps::make_form(
                text("email-cmd-confirm", lang),
                fill(text("email-confirm-instructions", lang), {{"{address}", r->address}}));
            xeps::add_field(x, "code", "text-single", text("email-field-code", lang));
            xeps::CommandStep step;
            step.form = std::move(x);
            return step;
        }
        if (r->attempts >= code_attempts_ || now() > r->code_expires) {
            return note(text("email-code-void", lang), true);
        }
        auto given = xeps::form_value(*form, "code");
        const auto given_h = store_.code_hash(user, given);
        if (given_h.size() != r->code_h.size() ||
            sodium_memcmp(given_h.data(), r->code_h.data(), given_h.size()) != 0) {
            ++r->attempts;
            store_.put(*r);
            return note(
                text(r->attempts >= code_attempts_ ? "email-code-void" : "email-code-wrong", lang),
                true);
        }
        r->confirmed = true;
        r->code_h.clear();
        r->code_expires = 0;
        r->attempts = 0;
        r->lang = server_.texts().pick_lang("email-notice-body", lang);
        store_.put(*r);
        confirmed_[user] = Confirmed{r->waiting_since, r->last_notice};
        return note(fill(text("email-confirmed", lang), {{"{address}", r->address}}));
    }

    xeps::CommandStep run_remove(const std::string& user, const Element*, std::string_view lang) {
        confirmed_.erase(user);
        return note(text(store_.remove(user) ? "email-removed" : "email-nothing-to-remove", lang));
    }

    // ---- notices ----

    void message_waiting(const std::string& user, const Element& stanza) {
        auto it = confirmed_.find(user);
        if (it == confirmed_.end() || it->second.waiting_since != 0 || !worth_a_notice(stanza)) {
            return;  // no confirmed address, or already counting from an earlier message
        }
        it->second.waiting_since = now();
        store_.set_waiting(user, it->second.waiting_since);
    }

    void online(const std::string& user) {
        // The user came first: whatever waited is being read, no mail.
        auto it = confirmed_.find(user);
        if (it != confirmed_.end() && it->second.waiting_since != 0) {
            it->second.waiting_since = 0;
            store_.set_waiting(user, 0);
        }
    }

    void tick() {
        const auto t = now();
        for (auto& [user, c] : confirmed_) {
            if (c.waiting_since == 0 || t < c.waiting_since + delay_ ||
                t < c.last_notice + interval_) {
                continue;
            }
            if (!server_.sessions().of(user).empty()) {
                // Connected (or resumable) without having bound since: no mail either.
                c.waiting_since = 0;
                store_.set_waiting(user, 0);
                continue;
            }
            auto r = store_.get(user);
            if (!r || !r->confirmed) {
                continue;
            }
            store_.add_mail(user, r->address,
                            fill(text("email-notice-subject", r->lang), {{"{service}", service_}}),
                            fill(text("email-notice-body", r->lang), {{"{service}", service_}}), t);
            c.waiting_since = 0;
            c.last_notice = t;
            store_.set_notified(user, t);
        }
        send_next();
    }

    // One mail at a time goes to the worker; the next one when it is done.
    void send_next() {
        if (sending_) {
            return;
        }
        auto mail = store_.next_due(now());
        if (!mail) {
            return;
        }
        sending_ = true;
        const auto id = mail->id;
        const auto attempts = mail->attempts;
        worker_->submit(Mail{mail->to, mail->subject, mail->body},
                        [weak = weak_from_this(), id, attempts](std::string error) {
                            if (auto self = weak.lock()) {
                                self->sent(id, attempts, error);
                            }
                        });
    }

    void sent(std::int64_t id, int attempts, const std::string& error) {
        sending_ = false;
        if (error.empty()) {
            store_.mail_sent(id);
            m_.log().debug("email_notices: mail handed to the relay");
            send_next();
            return;
        }
        // Never the address or the text in the log; the relay's error is about the relay.
        const std::int64_t wait =
            std::min<std::int64_t>(retry_max_, first_retry_s << std::min(attempts, 20));
        store_.mail_failed(id, now() + wait);
        m_.log().warn("email_notices: relay failed (attempt ", attempts + 1, ", next in ", wait,
                      " s): ", error);
    }

    ModuleContext& m_;
    Server& server_;
    NoticeStore store_;
    std::int64_t delay_;
    std::int64_t interval_;
    std::int64_t code_ttl_;
    int code_attempts_;
    std::int64_t retry_max_;
    std::string service_;
    std::unique_ptr<MailWorker> worker_;
    std::unordered_map<std::string, Confirmed> confirmed_;
    // In memory only: bounded by the accounts that asked for a code, reset by a restart.
    std::unordered_map<std::string, CodeQuota> codes_sent_;
    bool sending_ = false;
};

std::shared_ptr<EmailNotices> load(ModuleContext& m) {
    auto module = std::make_shared<EmailNotices>(m);
    module->start();
    return module;
}

}  // namespace
}  // namespace haven::email_notices

HAVEN_MODULE(email_notices, haven::email_notices::load)
