// The texts the functional addresses module sends, in English and German.
#include "modules/functional_addresses/texts.hpp"

#include <string>
#include <string_view>
#include <utility>

namespace haven::functional_addresses {

void register_texts(Texts& t, const std::vector<AddressConfig>& addresses) {
    for (const auto& a : addresses) {
        // One configured language serves the other too.
        auto en = a.auto_reply_en.empty() ? a.auto_reply_de : a.auto_reply_en;
        auto de = a.auto_reply_de.empty() ? a.auto_reply_en : a.auto_reply_de;
        if (!en.empty()) {
            t.set("en", "fa-auto-reply/" + a.local, en);
            t.set("de", "fa-auto-reply/" + a.local, de);
        }
    }
    auto both = [&t](std::string_view key, std::string en, std::string de) {
        t.set("en", key, std::move(en));
        t.set("de", key, std::move(de));
    };
    both("fa-intro-jid",
         "New inquiry to {address} from {sender}. Reply in this chat to take it over; "
         "!help lists the commands.",
         "Neue Anfrage an {address} von {sender}. Antworte in diesem Chat, um sie zu "
         "übernehmen; !help zeigt die Befehle.");
    both("fa-intro-pseudonym",
         "New inquiry to {address} ({sender}). Reply in this chat to take it over; !help "
         "lists the commands.",
         "Neue Anfrage an {address} ({sender}). Antworte in diesem Chat, um sie zu "
         "übernehmen; !help zeigt die Befehle.");
    both("fa-inquiry-label", "Inquiry {token}", "Anfrage {token}");
    both("fa-taken", "Taken by {staff}.", "Übernommen von {staff}.");
    both("fa-already-taken", "This inquiry has already been taken by {staff}.",
         "Diese Anfrage hat bereits {staff} übernommen.");
    both("fa-closed", "This inquiry is closed.", "Diese Anfrage ist abgeschlossen.");
    both("fa-closed-by", "Closed by {staff}.", "Abgeschlossen von {staff}.");
    both("fa-close-done",
         "The inquiry is closed. If the person writes again, that opens a new inquiry.",
         "Die Anfrage ist abgeschlossen. Schreibt die Person erneut, entsteht eine neue "
         "Anfrage.");
    both("fa-handed-to-you", "{staff} handed this inquiry over to you.",
         "{staff} hat dir diese Anfrage übergeben.");
    both("fa-handed-over", "{from} handed this inquiry over to {to}.",
         "{from} hat diese Anfrage an {to} übergeben.");
    both("fa-handover-done", "Handed over to {staff}.", "An {staff} übergeben.");
    both("fa-handover-not-staff", "{who} is not on the team of {address}.",
         "{who} gehört nicht zum Team von {address}.");
    both("fa-handover-same", "{staff} already handles this inquiry.",
         "{staff} bearbeitet diese Anfrage bereits.");
    both("fa-handover-usage", "Usage: !handover <name or JID of a team member>",
         "Verwendung: !handover <Name oder JID eines Teammitglieds>");
    both("fa-unknown-command", "Unknown command {command}; !help lists the commands.",
         "Unbekannter Befehl {command}; !help zeigt die Befehle.");
    both("fa-help",
         "Commands in this chat (with ! or /):\n"
         "!handover <team member> – hand this inquiry over\n"
         "!close – close this inquiry\n"
         "!help – this text\n"
         "Everything else goes to the person who wrote, as a message from {address}; "
         "the first reply takes the inquiry over.",
         "Befehle in diesem Chat (mit ! oder /):\n"
         "!handover <Teammitglied> – diese Anfrage übergeben\n"
         "!close – diese Anfrage abschließen\n"
         "!help – dieser Text\n"
         "Alles andere geht als Nachricht von {address} an die Person, die geschrieben "
         "hat; die erste Antwort übernimmt die Anfrage.");
    both("fa-cmd-handover-title", "Hand over an inquiry", "Anfrage übergeben");
    both("fa-cmd-handover-instructions",
         "The team member gets a notice in the inquiry's chat; later messages from the "
         "person go to them.",
         "Das Teammitglied bekommt einen Hinweis im Chat der Anfrage; spätere Nachrichten "
         "der Person gehen an sie oder ihn.");
    both("fa-cmd-close-title", "Close an inquiry", "Anfrage abschließen");
    both("fa-cmd-close-instructions", "A later message from the person opens a new inquiry.",
         "Eine spätere Nachricht der Person eröffnet eine neue Anfrage.");
    both("fa-cmd-field-inquiry", "Inquiry", "Anfrage");
    both("fa-cmd-field-to", "Team member", "Teammitglied");
    both("fa-cmd-none", "There are no inquiries you can hand over or close.",
         "Es gibt keine Anfragen, die du übergeben oder abschließen kannst.");
    both("fa-cmd-unknown", "There is no such inquiry.", "Diese Anfrage gibt es nicht.");
    both("fa-state-open", "open", "offen");
}

}  // namespace haven::functional_addresses
