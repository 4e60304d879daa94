// The `functional_addresses` module's options: its part of the config schema, without its
// code (linked into havend and havenctl; server/config/schema.hpp).
#include "modules/functional_addresses/address_config.hpp"
#include "server/config/schema.hpp"

namespace haven::functional_addresses {
namespace {

config::OptionSpec addresses_option() {
    config::OptionSpec spec;
    spec.section = "functional_addresses";
    spec.key = "addresses";
    spec.type = config::Type::Table;
    spec.doc =
        "The functional addresses: [[functional_addresses.addresses]] tables with jid, "
        "name, staff, auto_reply_en, auto_reply_de, show_sender, reply_nick, pseudonyms.";
    spec.validate = validate_addresses;
    return spec;
}

}  // namespace
}  // namespace haven::functional_addresses

HAVEN_MODULE_OPTIONS(
    functional_addresses, "Functional addresses: shared team inboxes with per-inquiry JIDs",
    haven::config::opt_bool("functional_addresses", "enabled", true,
                            "Serve the configured functional addresses."),
    haven::functional_addresses::addresses_option(),
    haven::config::opt_string("functional_addresses", "staff_language", "en",
                              "Language of notices to staff who are offline.", {"en", "de"}),
    haven::config::opt_int("functional_addresses", "closed_retention_days", 30, 0, 3650,
                           "Closed inquiries are forgotten after this many days; 0 "
                           "keeps them."),
    haven::config::opt_int("functional_addresses", "staff_queue_limit", 10000, 1, 1000000,
                           "Inquiry messages queued per offline staff member (the "
                           "personal [offline] quota does not apply to them)."))
