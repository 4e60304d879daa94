// The `email_notices` module's options: its part of the config schema, without its code
// (linked into havend and havenctl; server/config/schema.hpp).
#include "server/config/schema.hpp"

HAVEN_MODULE_OPTIONS(
    email_notices, "Content-free e-mail notices that messages are waiting (README.md)",
    haven::config::opt_bool("email_notices", "enabled", false,
                            "Let users set and confirm an e-mail address (ad-hoc commands) and "
                            "send them a notice without sender or content when messages wait. "
                            "Needs an SMTP relay."),
    haven::config::opt_string("email_notices", "smtp_url", "smtp://127.0.0.1:25",
                              "The relay: smtp://HOST:PORT (with STARTTLS as smtp_tls says) or "
                              "smtps://HOST:PORT (TLS from the first byte)."),
    haven::config::opt_string("email_notices", "smtp_tls", "required",
                              "STARTTLS on smtp:// URLs: required, opportunistic, or none "
                              "(only for a relay on the same host).",
                              {"required", "opportunistic", "none"}),
    haven::config::opt_string("email_notices", "smtp_user", "",
                              "User for SMTP AUTH; empty: no authentication."),
    haven::config::opt_string("email_notices", "smtp_password_file", "",
                              "File holding the SMTP password (first line), so it is not in "
                              "the config file."),
    haven::config::opt_string("email_notices", "smtp_ca_file", "",
                              "CA certificates for the relay's certificate (PEM); empty: the "
                              "system store."),
    haven::config::opt_string("email_notices", "from", "",
                              "Sender address of the mails; empty: noreply@<server domain>."),
    haven::config::opt_string("email_notices", "service_name", "",
                              "The service's name in the mails; empty: the server domain."),
    haven::config::opt_int("email_notices", "delay_s", 900, 0, 7 * 86400,
                           "How long a message must have waited, with none of the user's "
                           "devices connected or resumable, before the notice goes out; a "
                           "user who comes online first gets none."),
    haven::config::opt_int("email_notices", "min_interval_s", 6 * 3600, 0, 30 * 86400,
                           "At most one notice per user in this period, however many messages "
                           "arrive."),
    haven::config::opt_int("email_notices", "code_ttl_s", 1800, 60, 7 * 86400,
                           "How long a confirmation code is valid."),
    haven::config::opt_int("email_notices", "code_attempts", 5, 1, 100,
                           "Wrong codes before the pending code is void (a new one must be "
                           "requested)."),
    haven::config::opt_int("email_notices", "retry_max_s", 3600, 10, 86400,
                           "Longest wait between attempts when the relay fails; the wait "
                           "doubles from 30 s. Mails wait in the database across restarts."))
