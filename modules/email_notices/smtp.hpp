// SMTP for e-mail notices: one mail at a time through libcurl, on a worker thread of its own so
// that a slow or unreachable relay never blocks the event loop (or the password-hashing pool).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>

namespace haven::email_notices {

struct SmtpSettings {
    std::string url;       // smtp://host:port (STARTTLS per tls) or smtps://host:port
    std::string tls;       // required | opportunistic | none (smtp:// only)
    std::string user;      // empty: no AUTH
    std::string password;  // read from [email_notices] smtp_password_file
    std::string ca_file;   // empty: the system store
    std::string from;      // envelope and header From
};

struct Mail {
    std::string to;
    std::string subject;
    std::string body;  // plain text, UTF-8
};

// The message as RFC 5322 text: UTF-8 subject in an RFC 2047 encoded word, the body in
// base64, so no relay ever has to deal with 8-bit data. `date` is an RFC 5322 date,
// `message_id` the part before '@' of the Message-ID.
std::string format_mail(const Mail& mail, const std::string& from, const std::string& date,
                        const std::string& message_id);

// Sends one mail (blocking; call it off the loop). Empty on success, else the error.
std::string send_mail(const SmtpSettings& smtp, const Mail& mail);

// A single thread that sends mails one after the other; each result is posted back to `io`.
class MailWorker {
public:
    using Done = std::function<void(std::string error)>;
    MailWorker(boost::asio::io_context& io, SmtpSettings smtp);
    ~MailWorker();  // waits for the mail being sent (bounded by libcurl's timeouts)
    MailWorker(const MailWorker&) = delete;
    MailWorker& operator=(const MailWorker&) = delete;

    void submit(Mail mail, Done done);
    bool busy() const;

private:
    void run();

    boost::asio::io_context& io_;
    const SmtpSettings smtp_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::pair<Mail, Done>> queue_;
    bool sending_ = false;
    bool stop_ = false;
    std::thread thread_;  // last: starts once everything above exists
};

}  // namespace haven::email_notices
