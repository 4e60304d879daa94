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
    t.set_en_de("fa-intro-jid",
                "New inquiry to {address} from {sender}. Reply in this chat to take it over; "
                "!help lists the commands.",
                "Neue Anfrage an {address} von {sender}. Antworte in diesem Chat, um sie zu "
                "übernehmen; !help zeigt die Befehle.");
    t.set_en_de("fa-intro-pseudonym",
                "New inquiry to {address} ({sender}). Reply in this chat to take it over; !help "
                "lists the commands.",
                "Neue Anfrage an {address} ({sender}). Antworte in diesem Chat, um sie zu "
                "übernehmen; !help zeigt die Befehle.");
    t.set_en_de("fa-inquiry-label", "Inquiry {token}", "Anfrage {token}");
    t.set_en_de("fa-taken", "Taken by {staff}.", "Übernommen von {staff}.");
    t.set_en_de("fa-already-taken", "This inquiry has already been taken by {staff}.",
                "Diese Anfrage hat bereits {staff} übernommen.");
    t.set_en_de("fa-closed", "This inquiry is closed.", "Diese Anfrage ist abgeschlossen.");
    t.set_en_de("fa-closed-by", "Closed by {staff}.", "Abgeschlossen von {staff}.");
    t.set_en_de("fa-close-done",
                "The inquiry is closed. If the person writes again, that opens a new inquiry.",
                "Die Anfrage ist abgeschlossen. Schreibt die Person erneut, entsteht eine neue "
                "Anfrage.");
    t.set_en_de("fa-handed-to-you", "{staff} handed this inquiry over to you.",
                "{staff} hat dir diese Anfrage übergeben.");
    t.set_en_de("fa-handed-over", "{from} handed this inquiry over to {to}.",
                "{from} hat diese Anfrage an {to} übergeben.");
    t.set_en_de("fa-handover-done", "Handed over to {staff}.", "An {staff} übergeben.");
    t.set_en_de("fa-handover-not-staff", "{who} is not on the team of {address}.",
                "{who} gehört nicht zum Team von {address}.");
    t.set_en_de("fa-handover-same", "{staff} already handles this inquiry.",
                "{staff} bearbeitet diese Anfrage bereits.");
    t.set_en_de("fa-handover-usage", "Usage: !handover <name or JID of a team member>",
                "Verwendung: !handover <Name oder JID eines Teammitglieds>");
    t.set_en_de("fa-unknown-command", "Unknown command {command}; !help lists the commands.",
                "Unbekannter Befehl {command}; !help zeigt die Befehle.");
    t.set_en_de("fa-help",
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
    t.set_en_de("fa-cmd-handover-title", "Hand over an inquiry", "Anfrage übergeben");
    t.set_en_de("fa-cmd-handover-instructions",
                "The team member gets a notice in the inquiry's chat; later messages from the "
                "person go to them.",
                "Das Teammitglied bekommt einen Hinweis im Chat der Anfrage; spätere Nachrichten "
                "der Person gehen an sie oder ihn.");
    t.set_en_de("fa-cmd-close-title", "Close an inquiry", "Anfrage abschließen");
    t.set_en_de("fa-cmd-close-instructions", "A later message from the person opens a new inquiry.",
                "Eine spätere Nachricht der Person eröffnet eine neue Anfrage.");
    t.set_en_de("fa-cmd-field-inquiry", "Inquiry", "Anfrage");
    t.set_en_de("fa-cmd-field-to", "Team member", "Teammitglied");
    t.set_en_de("fa-cmd-none", "There are no inquiries you can hand over or close.",
                "Es gibt keine Anfragen, die du übergeben oder abschließen kannst.");
    t.set_en_de("fa-cmd-unknown", "There is no such inquiry.", "Diese Anfrage gibt es nicht.");
    t.set_en_de("fa-state-open", "open", "offen");
}

}  // namespace haven::functional_addresses
