// Scanner: incremental stanza splitting for the load generator.
#include "scanner.hpp"

#include <cstring>

namespace bench {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view local_name(std::string_view qname) {
    auto colon = qname.find(':');
    return colon == std::string_view::npos ? qname : qname.substr(colon + 1);
}

// The end ('>') of the tag starting at `lt`, honouring quoted attribute values; npos if the tag
// is not complete yet.
std::size_t tag_end(const std::string& b, std::size_t lt) {
    char quote = 0;
    for (std::size_t i = lt + 1; i < b.size(); ++i) {
        char c = b[i];
        if (quote) {
            if (c == quote) {
                quote = 0;
            }
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '>') {
            return i;
        }
    }
    return std::string::npos;
}

// "<name" followed by a delimiter, at or after `from`; npos if absent.
std::size_t find_open(std::string_view xml, std::string_view name, std::size_t from) {
    while (true) {
        auto p = xml.find(name, from);
        if (p == std::string_view::npos) {
            return p;
        }
        std::size_t end = p + name.size();
        bool open_ok = p > 0 && (xml[p - 1] == '<' || xml[p - 1] == ':');
        bool close_ok = end < xml.size() && (is_space(xml[end]) || xml[end] == '>' ||
                                             xml[end] == '/');
        if (open_ok && close_ok) {
            // Reject end tags "</name>" (and "</p:name>").
            std::size_t lt = xml.rfind('<', p);
            if (lt != std::string_view::npos && lt + 1 < xml.size() && xml[lt + 1] != '/') {
                return lt;
            }
        }
        from = p + 1;
    }
}

}  // namespace

bool Scanner::next(ScanEvent& ev) {
    const std::size_t n = buf_.size();
    while (pos_ < n) {
        const char* base = buf_.data();
        const void* lt_ptr = std::memchr(base + pos_, '<', n - pos_);
        if (!lt_ptr) {
            pos_ = n;  // text (or whitespace keepalives between stanzas)
            return false;
        }
        std::size_t lt = static_cast<const char*>(lt_ptr) - base;
        pos_ = lt;
        if (lt + 1 >= n) {
            return false;
        }
        char c = buf_[lt + 1];
        if (c == '?') {
            auto e = buf_.find("?>", lt + 2);
            if (e == std::string::npos) {
                return false;
            }
            pos_ = e + 2;
            continue;
        }
        if (c == '!') {
            if (n - lt < 4) {
                return false;
            }
            bool cdata = buf_.compare(lt, 9, "<![CDATA[") == 0;
            if (!cdata && n - lt < 9 && buf_.compare(lt, n - lt, "<![CDATA[", n - lt) == 0) {
                return false;  // could still become a CDATA section
            }
            auto e = buf_.find(cdata ? "]]>" : "-->", lt + 2);
            if (e == std::string::npos) {
                return false;
            }
            pos_ = e + 3;
            continue;
        }
        std::size_t gt = tag_end(buf_, lt);
        if (gt == std::string::npos) {
            return false;
        }
        pos_ = gt + 1;
        std::string_view tag(base + lt, gt + 1 - lt);
        if (c == '/') {
            std::string_view qname = tag.substr(2, tag.size() - 3);
            while (!qname.empty() && is_space(qname.back())) {
                qname.remove_suffix(1);
            }
            --depth_;
            if (depth_ == 1 && in_element_) {
                in_element_ = false;
                ev.kind = ScanEvent::Kind::Element;
                ev.xml = std::string_view(base + start_, pos_ - start_);
                std::string_view first = ev.xml.substr(1);
                std::size_t k = 0;
                while (k < first.size() && !is_space(first[k]) && first[k] != '>' &&
                       first[k] != '/') {
                    ++k;
                }
                ev.name = local_name(first.substr(0, k));
                return true;
            }
            if (depth_ <= 0) {
                depth_ = 0;
                ev.kind = ScanEvent::Kind::StreamClose;
                ev.xml = tag;
                ev.name = local_name(qname);
                return true;
            }
            continue;
        }
        bool self_closing = tag.size() >= 2 && tag[tag.size() - 2] == '/';
        std::size_t k = 1;
        while (k < tag.size() && !is_space(tag[k]) && tag[k] != '>' && tag[k] != '/') {
            ++k;
        }
        std::string_view name = local_name(tag.substr(1, k - 1));
        if (depth_ == 0) {
            depth_ = 1;
            ev.kind = ScanEvent::Kind::StreamOpen;
            ev.xml = tag;
            ev.name = name;
            return true;
        }
        if (depth_ == 1) {
            if (self_closing) {
                ev.kind = ScanEvent::Kind::Element;
                ev.xml = tag;
                ev.name = name;
                return true;
            }
            start_ = lt;
            in_element_ = true;
            depth_ = 2;
            continue;
        }
        if (!self_closing) {
            ++depth_;
        }
    }
    return false;
}

void Scanner::compact() {
    std::size_t keep_from = in_element_ ? start_ : pos_;
    if (keep_from == 0) {
        return;
    }
    if (keep_from >= buf_.size()) {
        buf_.clear();
        if (buf_.capacity() > 256 * 1024) {
            buf_.shrink_to_fit();
        }
        pos_ = 0;
        start_ = 0;
        return;
    }
    buf_.erase(0, keep_from);
    pos_ -= keep_from;
    start_ = in_element_ ? start_ - keep_from : 0;
}

std::string_view tag_attr(std::string_view xml, std::string_view name) {
    // The opening tag ends at the first '>' outside quotes.
    std::size_t end = 0;
    for (char quote = 0; end < xml.size(); ++end) {
        char c = xml[end];
        if (quote) {
            quote = c == quote ? 0 : quote;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '>') {
            break;
        }
    }
    std::string_view tag = xml.substr(0, end);
    std::size_t from = 0;
    while (true) {
        auto p = tag.find(name, from);
        if (p == std::string_view::npos) {
            return {};
        }
        std::size_t e = p + name.size();
        if (p > 0 && is_space(tag[p - 1]) && e + 1 < tag.size() && tag[e] == '=' &&
            (tag[e + 1] == '\'' || tag[e + 1] == '"')) {
            char q = tag[e + 1];
            auto close = tag.find(q, e + 2);
            if (close == std::string_view::npos) {
                return {};
            }
            return tag.substr(e + 2, close - e - 2);
        }
        from = p + 1;
    }
}

std::string_view child_text(std::string_view xml, std::string_view name) {
    auto lt = find_open(xml, name, 1);
    if (lt == std::string_view::npos) {
        return {};
    }
    auto gt = xml.find('>', lt);
    if (gt == std::string_view::npos || xml[gt - 1] == '/') {
        return {};
    }
    auto end = xml.find('<', gt + 1);
    if (end == std::string_view::npos) {
        return {};
    }
    return xml.substr(gt + 1, end - gt - 1);
}

bool has_child(std::string_view xml, std::string_view name) {
    return find_open(xml, name, 1) != std::string_view::npos;
}

std::string_view own_text(std::string_view xml) {
    auto gt = xml.find('>');
    if (gt == std::string_view::npos || xml[gt - 1] == '/') {
        return {};
    }
    auto end = xml.find('<', gt + 1);
    if (end == std::string_view::npos) {
        return {};
    }
    return xml.substr(gt + 1, end - gt - 1);
}

}  // namespace bench
