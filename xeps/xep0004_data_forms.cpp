// XEP-0004 Data Forms helpers (see xep0004_data_forms.hpp).
#include "xeps/xep0004_data_forms.hpp"

#include "server/xmpp/namespaces.hpp"

namespace haven::xeps {
namespace {
Element data(std::string name) { return Element(std::move(name), std::string(ns::data_forms)); }
}  // namespace

Element make_form(std::string_view title, std::string_view instructions) {
    Element x = data("x");
    x.attr("type", "form");
    x.add(data("title")).text(title);
    if (!instructions.empty()) {
        x.add(data("instructions")).text(instructions);
    }
    return x;
}

Element make_typed_form(std::string_view type, std::string_view form_type) {
    Element x = data("x");
    x.attr("type", std::string(type));
    if (!form_type.empty()) {
        add_field(x, "FORM_TYPE", "hidden", {}, form_type);
    }
    return x;
}

Element& add_field(Element& form, std::string_view var, std::string_view type,
                   std::string_view label, std::string_view value) {
    auto& f = form.add(data("field"));
    f.attr("var", std::string(var));
    if (!type.empty()) {
        f.attr("type", std::string(type));
    }
    if (!label.empty()) {
        f.attr("label", std::string(label));
    }
    if (!value.empty()) {
        f.add(data("value")).text(value);
    }
    return f;
}

Element& add_field_values(Element& form, std::string_view var, std::string_view type,
                          std::string_view label, const std::vector<std::string>& values) {
    auto& f = add_field(form, var, type, label);
    for (const auto& v : values) {
        f.add(data("value")).text(v);
    }
    return f;
}

void add_option(Element& field, std::string_view label, std::string_view value) {
    auto& o = field.add(data("option"));
    o.attr("label", std::string(label));
    o.add(data("value")).text(value);
}

std::string form_value(const Element& form, std::string_view var) {
    for (const auto* f : form.children("field", ns::data_forms)) {
        if (f->attr("var") == var) {
            return f->child_text("value", ns::data_forms);
        }
    }
    return {};
}

std::vector<std::string> form_values(const Element& form, std::string_view var) {
    std::vector<std::string> out;
    for (const auto* f : form.children("field", ns::data_forms)) {
        if (f->attr("var") == var) {
            for (const auto* v : f->children("value", ns::data_forms)) {
                out.push_back(v->text());
            }
            break;
        }
    }
    return out;
}

bool has_field(const Element& form, std::string_view var) {
    for (const auto* f : form.children("field", ns::data_forms)) {
        if (f->attr("var") == var) {
            return true;
        }
    }
    return false;
}

bool form_bool(std::string_view value) { return value == "1" || value == "true"; }

}  // namespace haven::xeps
