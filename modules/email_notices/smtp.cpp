// SMTP through libcurl (see smtp.hpp).
#include "modules/email_notices/smtp.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>

#include <curl/curl.h>
#include <boost/asio/post.hpp>

#include "server/auth/base64.hpp"
#include "server/core/random_id.hpp"

namespace haven::email_notices {
namespace {

struct CurlDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// Base64 in lines of 76 characters (RFC 2045 §6.8).
std::string wrapped_base64(std::string_view bytes) {
    const auto flat = auth::base64_encode(bytes);
    std::string out;
    for (std::size_t i = 0; i < flat.size(); i += 76) {
        out += flat.substr(i, 76);
        out += "\r\n";
    }
    return out;
}

// Header values come from the config and the user's form: no line breaks may get through,
// or a value could add headers (or recipients) of its own.
std::string one_line(std::string_view s) {
    std::string out(s);
    std::replace_if(
        out.begin(), out.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
    return out;
}

// An envelope address: <address>, on one line.
std::string angle(std::string_view address) {
    std::string out(1, '<');
    out += one_line(address);
    out += '>';
    return out;
}

struct Reader {
    std::string_view data;
};

std::size_t read_mail(char* buffer, std::size_t size, std::size_t items, void* user) {
    auto* r = static_cast<Reader*>(user);
    const std::size_t n = std::min(size * items, r->data.size());
    std::memcpy(buffer, r->data.data(), n);
    r->data.remove_prefix(n);
    return n;
}

std::string rfc5322_now() {
    char buf[64];
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return buf;
}

}  // namespace

std::string format_mail(const Mail& mail, const std::string& from, const std::string& date,
                        const std::string& message_id) {
    const auto domain = from.substr(from.find('@') + 1);
    std::string m;
    m += "Date: " + date + "\r\n";
    m += "From: " + one_line(from) + "\r\n";
    m += "To: " + one_line(mail.to) + "\r\n";
    m += "Message-ID: <" + message_id + "@" + one_line(domain) + ">\r\n";
    m += "Subject: =?UTF-8?B?" + auth::base64_encode(one_line(mail.subject)) + "?=\r\n";
    m += "MIME-Version: 1.0\r\n";
    m += "Content-Type: text/plain; charset=utf-8\r\n";
    m += "Content-Transfer-Encoding: base64\r\n";
    m += "Auto-Submitted: auto-generated\r\n";  // RFC 3834: no auto-replies to this
    m += "\r\n";
    m += wrapped_base64(mail.body);
    return m;
}

std::string send_mail(const SmtpSettings& smtp, const Mail& mail) {
    std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
    if (!curl) {
        return "curl_easy_init failed";
    }
    const std::string text = format_mail(mail, smtp.from, rfc5322_now(), random_hex(16));
    Reader reader{text};
    const std::string to = angle(mail.to);
    const std::string from = angle(smtp.from);
    std::unique_ptr<curl_slist, SlistDeleter> rcpt(curl_slist_append(nullptr, to.c_str()));
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, smtp.url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt.get());
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_mail);
    curl_easy_setopt(c, CURLOPT_READDATA, &reader);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // a worker thread: no SIGALRM
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (smtp.url.starts_with("smtp://")) {
        curl_easy_setopt(c, CURLOPT_USE_SSL,
                         smtp.tls == "none"            ? CURLUSESSL_NONE
                         : smtp.tls == "opportunistic" ? CURLUSESSL_TRY
                                                       : CURLUSESSL_ALL);
    }
    if (!smtp.ca_file.empty()) {
        curl_easy_setopt(c, CURLOPT_CAINFO, smtp.ca_file.c_str());
    }
    if (!smtp.user.empty()) {
        curl_easy_setopt(c, CURLOPT_USERNAME, smtp.user.c_str());
        curl_easy_setopt(c, CURLOPT_PASSWORD, smtp.password.c_str());
    }
    const CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        return curl_easy_strerror(rc);
    }
    return {};
}

MailWorker::MailWorker(boost::asio::io_context& io, SmtpSettings smtp)
    : io_(io), smtp_(std::move(smtp)), thread_([this] { run(); }) {}

MailWorker::~MailWorker() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
        queue_.clear();
    }
    cv_.notify_all();
    thread_.join();
}

void MailWorker::submit(Mail mail, Done done) {
    {
        std::lock_guard lock(mu_);
        queue_.emplace_back(std::move(mail), std::move(done));
    }
    cv_.notify_one();
}

bool MailWorker::busy() const {
    std::lock_guard lock(mu_);
    return sending_ || !queue_.empty();
}

void MailWorker::run() {
    for (;;) {
        std::pair<Mail, Done> job;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (stop_) {
                return;
            }
            job = std::move(queue_.front());
            queue_.pop_front();
            sending_ = true;
        }
        auto error = send_mail(smtp_, job.first);
        {
            std::lock_guard lock(mu_);
            sending_ = false;
            if (stop_) {
                return;  // the module is gone: nobody to tell (the mail stays in the outbox)
            }
        }
        // The result is handled on the loop, where the module's state lives.
        boost::asio::post(
            io_, [done = std::move(job.second), error = std::move(error)] { done(error); });
    }
}

}  // namespace haven::email_notices
