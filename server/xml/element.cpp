// Element DOM and the one XML serializer: every byte of outgoing XML is escaped here.
#include "server/xml/element.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <iterator>
#include <unordered_map>

#include <boost/container/small_vector.hpp>

#include "server/xmpp/namespaces.hpp"

namespace haven::xml {

namespace {

// Per-byte escape tables: nullptr copies the byte, "" drops it, anything else replaces it.
using EscapeTable = std::array<const char*, 256>;

// In character data '>' is escaped only where it would complete "]]>" (XML 1.0 §2.4): escaping
// every '>' would let a peer quadruple a stanza's size on the way out.
constexpr const char* gt_in_text = "&gt;";

constexpr EscapeTable make_table(bool attribute) {
    EscapeTable t{};
    // XML 1.0 §2.2: C0 controls other than tab, LF and CR cannot appear in a document at all,
    // not even as character references, so dropping them is the only way to stay well-formed.
    for (int c = 0; c < 0x20; ++c) {
        t[c] = "";
    }
    t['&'] = "&amp;";
    t['<'] = "&lt;";
    t['\t'] = nullptr;
    t['\n'] = nullptr;
    // XML 1.0 §2.11: a literal CR would be turned into LF by the receiver's parser.
    t['\r'] = "&#13;";
    if (attribute) {
        // Values are always quoted with ' here, so '"' and '>' need no escaping.
        t['\''] = "&apos;";
        // XML 1.0 §3.3.3: literal whitespace in attribute values is normalised to spaces.
        t['\t'] = "&#9;";
        t['\n'] = "&#10;";
    } else {
        t['>'] = gt_in_text;
    }
    return t;
}

constexpr EscapeTable attribute_table = make_table(true);
constexpr EscapeTable text_table = make_table(false);

void append_with(std::string& out, std::string_view in, const EscapeTable& table) {
    const char* p = in.data();
    const char* const end = p + in.size();
    const char* run = p;
    for (; p != end; ++p) {
        const char* rep = table[static_cast<unsigned char>(*p)];
        if (rep != nullptr) {
            out.append(run, p);
            run = p + 1;
            if (rep == gt_in_text) {
                // Looks at the output, so brackets separated by a dropped control still count.
                const std::size_t n = out.size();
                const bool closes_cdata_end = n >= 2 && out[n - 1] == ']' && out[n - 2] == ']';
                out.append(closes_cdata_end ? rep : ">");
                continue;
            }
            out.append(rep);
        }
    }
    out.append(run, end);
}

void append_text(std::string& out, std::string_view text) {
    append_with(out, text, text_table);
}

// "{uri}local" keys: returns true and splits them.
bool split_clark(std::string_view key, std::string_view& uri, std::string_view& local) {
    if (key.size() < 3 || key.front() != '{') {
        return false;
    }
    // The last '}': a namespace URI may contain one, a local name (an XML NCName) never does
    // (found by tests/fuzz/fuzz_stream: splitting at the first wrote an invalid attribute).
    const auto close = key.rfind('}');
    if (close == std::string_view::npos) {
        return false;
    }
    uri = key.substr(1, close - 1);
    local = key.substr(close + 1);
    return true;
}

// Number (1-based) of the generated prefix for the namespaced attribute at `index`: prefixes are
// numbered by the first occurrence of each distinct URI on this element. Namespaced attributes
// are rare and few, so a rescan beats allocating a map per element.
std::size_t prefix_number(const std::vector<std::pair<std::string, std::string>>& attrs,
                          std::size_t index, std::string_view uri, bool& first) {
    std::size_t number = 0;
    for (std::size_t i = 0; i <= index; ++i) {
        std::string_view u;
        std::string_view l;
        if (!split_clark(attrs[i].first, u, l) || u.empty() || u == ns_xml) {
            continue;
        }
        bool seen_before = false;
        for (std::size_t j = 0; j < i && !seen_before; ++j) {
            std::string_view u2;
            std::string_view l2;
            seen_before = split_clark(attrs[j].first, u2, l2) && u2 == u;
        }
        if (seen_before) {
            continue;
        }
        ++number;
        if (u == uri) {
            first = (i == index);
            return number;
        }
    }
    first = true;
    return number;
}

void append_attribute(std::string& out, std::string_view key, std::string_view value) {
    out += ' ';
    out.append(key);
    out += "='";
    append_escaped(out, value);
    out += '\'';
}

// Returns the bytes of the namespace declarations it wrote (the serializer's budget, below).
std::size_t append_attributes(std::string& out, const Element& e) {
    std::size_t declared = 0;
    const auto& attrs = e.attrs();
    for (std::size_t i = 0; i < attrs.size(); ++i) {
        const auto& [key, value] = attrs[i];
        std::string_view uri;
        std::string_view local;
        if (!split_clark(key, uri, local)) {
            // The serializer owns namespace declarations; a stray xmlns attribute would
            // duplicate or contradict the one written from ns().
            if (key == "xmlns" || key.starts_with("xmlns:")) {
                continue;
            }
            append_attribute(out, key, value);
            continue;
        }
        if (uri == ns_xml) {
            out += " xml:";
            out.append(local);
            out += "='";
            append_escaped(out, value);
            out += '\'';
            continue;
        }
        if (uri.empty()) {
            // "{}local" is simply an attribute in no namespace.
            append_attribute(out, local, value);
            continue;
        }
        bool first = false;
        const std::size_t n = prefix_number(attrs, i, uri, first);
        char digits[24];
        const auto [digits_end, ec] = std::to_chars(std::begin(digits), std::end(digits), n);
        const std::string_view number(digits, static_cast<std::size_t>(digits_end - digits));
        if (first) {
            const std::size_t before = out.size();
            out += " xmlns:ns";
            out += number;
            out += "='";
            append_escaped(out, uri);
            out += '\'';
            declared += out.size() - before;
        }
        out += " ns";
        out += number;
        out += ':';
        out.append(local);
        out += "='";
        append_escaped(out, value);
        out += '\'';
    }
    return declared;
}

template <typename Elem, typename Pred>
Elem* find_child(const std::vector<Node>& nodes, Pred pred) {
    for (const auto& n : nodes) {
        if (n.element && pred(*n.element)) {
            return n.element.get();
        }
    }
    return nullptr;
}

bool matches(const Element& e, std::string_view name, std::string_view ns) {
    return (name.empty() || e.name() == name) && (ns.empty() || e.ns() == ns);
}

}  // namespace

std::shared_ptr<const std::string> SharedString::share(std::string s) {
    // Immutable once built (thread-safe static initialisation); copies only touch the
    // reference counts, which shared_ptr keeps atomically.
    static const auto table = [] {
        std::vector<std::shared_ptr<const std::string>> t;
        for (std::string_view uri : {ns::client, ns::stanza_errors, ns::stream_errors, ns::delay,
                                     ns::roster, ns::disco_info, ns::disco_items, ns::ping,
                                     ns::chatstates, ns::nick, ns::data_forms, ns::commands,
                                     ns::vcard, ns::blocking, ns::sasl, ns::bind, ns::session,
                                     ns::tls, ns_streams, ns_xml}) {
            t.push_back(std::make_shared<const std::string>(uri));
        }
        return t;
    }();
    for (const auto& known : table) {
        if (*known == s) {
            return known;
        }
    }
    return std::make_shared<const std::string>(std::move(s));
}

Element::Element(std::string name, std::string ns)
    : name_(std::move(name)), ns_(std::move(ns)) {}

Element::Element(const Element& other)
    : name_(other.name_), ns_(other.ns_), attrs_(other.attrs_) {
    nodes_.reserve(other.nodes_.size());
    for (const auto& n : other.nodes_) {
        Node copy;
        if (n.element) {
            copy.element = std::make_unique<Element>(*n.element);
        } else {
            copy.text = n.text;
        }
        nodes_.push_back(std::move(copy));
    }
}

Element& Element::operator=(const Element& other) {
    if (this != &other) {
        Element copy(other);
        *this = std::move(copy);
    }
    return *this;
}

const std::string* Element::find_attr(std::string_view key) const {
    for (const auto& [k, v] : attrs_) {
        if (k == key) {
            return &v;
        }
    }
    return nullptr;
}

std::string_view Element::attr(std::string_view key) const {
    const std::string* v = find_attr(key);
    return v ? std::string_view(*v) : std::string_view();
}

Element& Element::attr(std::string_view key, std::string value) {
    for (auto& [k, v] : attrs_) {
        if (k == key) {
            v = std::move(value);
            return *this;
        }
    }
    attrs_.emplace_back(std::string(key), std::move(value));
    return *this;
}

void Element::remove_attr(std::string_view key) {
    std::erase_if(attrs_, [&](const auto& kv) { return kv.first == key; });
}

Element& Element::add(Element child) {
    Node n;
    n.element = std::make_unique<Element>(std::move(child));
    nodes_.push_back(std::move(n));
    return *nodes_.back().element;
}

Element& Element::text(std::string_view text) {
    if (text.empty()) {
        return *this;
    }
    if (!nodes_.empty() && nodes_.back().is_text()) {
        nodes_.back().text.append(text);
    } else {
        Node n;
        n.text.assign(text);
        nodes_.push_back(std::move(n));
    }
    return *this;
}

Element* Element::child(std::string_view name, std::string_view ns) {
    return find_child<Element>(nodes_, [&](const Element& e) {
        return e.name() == name && (ns.empty() || e.ns() == ns);
    });
}

const Element* Element::child(std::string_view name, std::string_view ns) const {
    return find_child<const Element>(nodes_, [&](const Element& e) {
        return e.name() == name && (ns.empty() || e.ns() == ns);
    });
}

const Element* Element::child_ns(std::string_view ns) const {
    return find_child<const Element>(nodes_, [&](const Element& e) { return e.ns() == ns; });
}

const Element* Element::first_child() const {
    return find_child<const Element>(nodes_, [](const Element&) { return true; });
}

Element* Element::first_child() {
    return find_child<Element>(nodes_, [](const Element&) { return true; });
}

std::string Element::child_text(std::string_view name, std::string_view ns) const {
    const Element* c = child(name, ns);
    return c ? c->text() : std::string();
}

std::vector<const Element*> Element::children(std::string_view name, std::string_view ns) const {
    std::vector<const Element*> out;
    for (const auto& n : nodes_) {
        if (n.element && matches(*n.element, name, ns)) {
            out.push_back(n.element.get());
        }
    }
    return out;
}

std::vector<Element*> Element::children(std::string_view name, std::string_view ns) {
    std::vector<Element*> out;
    for (auto& n : nodes_) {
        if (n.element && matches(*n.element, name, ns)) {
            out.push_back(n.element.get());
        }
    }
    return out;
}

std::size_t Element::remove_children(std::string_view name, std::string_view ns) {
    return std::erase_if(
        nodes_, [&](const Node& n) { return n.element && matches(*n.element, name, ns); });
}

std::string Element::text() const {
    std::string out;
    for (const auto& n : nodes_) {
        if (n.is_text()) {
            out += n.text;
        }
    }
    return out;
}

void append_escaped(std::string& out, std::string_view text) {
    append_with(out, text, attribute_table);
}

namespace {

// Namespace hoisting. Written naively, every element whose namespace differs from its parent's
// declares it again: a stanza that binds a 7,000-character URI to a prefix once and then holds
// 30,000 elements in it would come out 200 MB long (and be stored that way offline).
//
// So serialisation has two paths. The fast one writes the plain xmlns='' form that naive
// clients (and CSS-selector lookups such as [xmlns='...']) expect, adding up the bytes of the
// declarations it writes; every ordinary stanza, carbons and forwards included, stays well under
// `naive_budget` and is done in one walk. Past the budget the fast path stops at once (so the
// waste is bounded by the input plus the budget), the output is cut back, and the slow path
// counts, per namespace, how many elements would have to declare it (and how many elements
// carry attributes in it); a namespace whose repeated declarations would cost more than
// `hoist_threshold` bytes is declared once, on the element being serialised, with a prefix
// ("n1", "n2", ...), and every element in it is written prefixed. Output then stays within
// about twice the input plus `naive_budget`. The budget check costs an addition per
// declaration; the counting walk it spares ordinary stanzas was ~3 % of havend's
// instructions per message (contrib/bench/instructions.sh).
constexpr std::size_t naive_budget = 1024;
constexpr std::size_t hoist_threshold = 128;

struct NsUse {
    std::string_view uri;
    std::size_t sites = 0;  // declarations the naive form would write
    std::size_t prefix = 0;  // 1-based hoisted prefix number, 0 = not hoisted
    const Element* counted_on = nullptr;  // the last element whose attributes counted here
};

// Namespace -> use. Linear while small (the common case: a handful of namespaces), hashed once
// a hostile stanza brings thousands.
class NsTable {
public:
    NsUse& at(std::string_view uri) {
        if (!index_.empty()) {
            auto [it, inserted] = index_.try_emplace(uri, uses_.size());
            if (inserted) {
                uses_.push_back(NsUse{uri});
            }
            return uses_[it->second];
        }
        for (auto& u : uses_) {
            if (u.uri == uri) {
                return u;
            }
        }
        uses_.push_back(NsUse{uri});
        if (uses_.size() > 16) {
            for (std::size_t i = 0; i < uses_.size(); ++i) {
                index_.emplace(uses_[i].uri, i);
            }
        }
        return uses_.back();
    }
    const NsUse* find(std::string_view uri) const {
        if (!index_.empty()) {
            auto it = index_.find(uri);
            return it == index_.end() ? nullptr : &uses_[it->second];
        }
        for (const auto& u : uses_) {
            if (u.uri == uri) {
                return &u;
            }
        }
        return nullptr;
    }
    auto& uses() { return uses_; }
    const auto& uses() const { return uses_; }

private:
    boost::container::small_vector<NsUse, 8> uses_;  // no allocation for ordinary stanzas
    std::unordered_map<std::string_view, std::size_t> index_;
};

// Namespaces with a prefix bound from the start, which are never declared: the stream's (bound by
// the stream header) and XML's own, which no default namespace may be bound to (Namespaces in
// XML §3; an element in it reached the serializer through fuzz_stream as <xml:x/>).
std::string_view fixed_prefix(const Element& e) {
    if (e.ns() == ns_streams) {
        return "stream:";
    }
    if (e.ns() == ns_xml) {
        return "xml:";
    }
    return {};
}

// The namespace an element is written in: builders leave it empty to mean "the parent's".
std::string_view effective_ns(const Element& e, std::string_view parent) {
    return e.ns().empty() ? parent : std::string_view(e.ns());
}

// Counts declaration sites below `e` (whose own effective namespace is `ns`). Recursion depth is
// the tree's, which the parser caps (max_depth) and builders keep shallow.
void count_sites(const Element& e, std::string_view ns, NsTable& table, bool& repeated) {
    // Attribute namespaces: the naive form declares each once per element that uses it.
    for (const auto& [key, value] : e.attrs()) {
        std::string_view uri;
        std::string_view local;
        if (split_clark(key, uri, local) && !uri.empty() && uri != ns_xml) {
            auto& u = table.at(uri);
            if (u.counted_on != &e) {  // several attributes of one element share one declaration
                u.counted_on = &e;
                repeated |= ++u.sites > 1;
            }
        }
    }
    for (const auto& n : e.nodes()) {
        if (!n.element) {
            continue;
        }
        const Element& c = *n.element;
        const std::string_view cns = effective_ns(c, ns);
        const bool fixed = !fixed_prefix(c).empty();
        if (!fixed && cns != ns) {
            repeated |= ++table.at(cns).sites > 1;
        }
        count_sites(c, fixed ? ns : cns, table, repeated);
    }
}

// GCC 12 reports `out_ += fixed` below as a possibly dangling pointer once enough is inlined
// into element(); `fixed` views a string literal (fixed_prefix), so it is a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
class Writer {
public:
    // `budget`: most declaration bytes the plain form may write before over_budget() (only
    // without a hoisting table; 0 = unlimited).
    Writer(std::string& out, const NsTable* hoisted, std::size_t budget = 0)
        : out_(out), hoisted_(hoisted), budget_(budget) {}

    bool over_budget() const { return over_; }

    void element(const Element& e, std::string_view scope, std::string_view parent_effective,
                 bool top) {
        if (over_) {
            return;  // the caller starts over on the slow path
        }
        const std::string_view fixed = fixed_prefix(e);
        const std::string_view ens = !fixed.empty() ? parent_effective
                                                    : effective_ns(e, parent_effective);
        std::size_t prefix = 0;
        out_ += '<';
        if (!fixed.empty()) {
            out_ += fixed;
            out_ += e.name();
        } else if (ens.empty() || ens == scope) {
            out_ += e.name();
        } else if (const NsUse* h = hoisted(ens)) {
            prefix = h->prefix;
            append_prefixed(e.name(), prefix);
        } else {
            out_ += e.name();
            const std::size_t before = out_.size();
            out_ += " xmlns='";
            append_escaped(out_, ens);  // as written: escaping can make it 6x the URI
            out_ += '\'';
            scope = ens;
            spend(out_.size() - before);
        }
        if (top && hoisted_ != nullptr) {
            declare_hoisted();
        }
        attributes(e);
        if (e.nodes().empty()) {
            out_ += "/>";
            return;
        }
        out_ += '>';
        for (const auto& n : e.nodes()) {
            if (n.element) {
                element(*n.element, scope, ens, false);
            } else {
                append_text(out_, n.text);
            }
        }
        out_ += "</";
        if (!fixed.empty()) {
            out_ += fixed;
            out_ += e.name();
        } else if (prefix != 0) {
            append_prefixed(e.name(), prefix);
        } else {
            out_ += e.name();
        }
        out_ += '>';
    }

private:
    const NsUse* hoisted(std::string_view uri) const {
        if (hoisted_ == nullptr) {
            return nullptr;
        }
        const NsUse* u = hoisted_->find(uri);
        return u != nullptr && u->prefix != 0 ? u : nullptr;
    }

    void append_number(std::size_t n) {
        char digits[24];
        const auto [end, ec] = std::to_chars(std::begin(digits), std::end(digits), n);
        out_.append(digits, end);
    }

    void append_prefixed(std::string_view name, std::size_t prefix) {
        out_ += 'n';
        append_number(prefix);
        out_ += ':';
        out_ += name;
    }

    void declare_hoisted() {
        for (const auto& u : hoisted_->uses()) {
            if (u.prefix == 0) {
                continue;
            }
            out_ += " xmlns:n";
            append_number(u.prefix);
            out_ += "='";
            append_escaped(out_, u.uri);
            out_ += '\'';
        }
    }

    void spend(std::size_t declared) {
        declared_ += declared;
        over_ = budget_ != 0 && declared_ > budget_;
    }

    void attributes(const Element& e) {
        if (hoisted_ == nullptr) {
            spend(append_attributes(out_, e));
            return;
        }
        // Attributes in a hoisted namespace use its prefix; the rest as usual.
        bool any = false;
        for (const auto& [key, value] : e.attrs()) {
            std::string_view uri;
            std::string_view local;
            if (split_clark(key, uri, local) && hoisted(uri) != nullptr) {
                any = true;
                break;
            }
        }
        if (!any) {
            append_attributes(out_, e);
            return;
        }
        Element rest(e.name());
        for (const auto& [key, value] : e.attrs()) {
            std::string_view uri;
            std::string_view local;
            const NsUse* h = split_clark(key, uri, local) ? hoisted(uri) : nullptr;
            if (h == nullptr) {
                rest.append_attr(key, value);
                continue;
            }
            out_ += ' ';
            append_prefixed(local, h->prefix);
            out_ += "='";
            append_escaped(out_, value);
            out_ += '\'';
        }
        append_attributes(out_, rest);
    }

    std::string& out_;
    const NsTable* hoisted_;
    std::size_t budget_;
    std::size_t declared_ = 0;
    bool over_ = false;
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace

void serialize_to(std::string& out, const Element& e, std::string_view parent_ns) {
    const std::size_t start = out.size();
    {
        Writer fast(out, nullptr, naive_budget);
        fast.element(e, parent_ns, parent_ns, true);
        if (!fast.over_budget()) {
            return;
        }
    }
    out.resize(start);
    const std::string_view top_ns = !fixed_prefix(e).empty() ? parent_ns
                                                             : effective_ns(e, parent_ns);
    NsTable table;
    bool repeated = false;
    count_sites(e, top_ns, table, repeated);
    std::size_t hoisted = 0;
    if (repeated) {
        for (auto& u : table.uses()) {
            if (u.sites > 1 && (u.sites - 1) * (u.uri.size() + 12) > hoist_threshold) {
                u.prefix = ++hoisted;
            }
        }
    }
    Writer w(out, hoisted != 0 ? &table : nullptr);
    w.element(e, parent_ns, parent_ns, true);
}

std::string serialize(const Element& e, std::string_view parent_ns) {
    std::string out;
    out.reserve(256);
    serialize_to(out, e, parent_ns);
    return out;
}

}  // namespace haven::xml
