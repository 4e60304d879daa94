// XEP-0004 Data Forms: building forms and reading submitted ones (ad-hoc commands, MUC
// configuration, disco extensions).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/xml/element.hpp"

namespace haven::xeps {

using xml::Element;

// <x xmlns='jabber:x:data' type='form'> with a title and optional instructions.
Element make_form(std::string_view title, std::string_view instructions);
// <x type='result'> (or another type) with a hidden FORM_TYPE field (XEP-0068) when given.
Element make_typed_form(std::string_view type, std::string_view form_type);
Element& add_field(Element& form, std::string_view var, std::string_view type,
                   std::string_view label, std::string_view value = {});
// A field with several values (list-multi, jid-multi, text-multi).
Element& add_field_values(Element& form, std::string_view var, std::string_view type,
                          std::string_view label, const std::vector<std::string>& values);
void add_option(Element& field, std::string_view label, std::string_view value);
// The first value of the field, or empty.
std::string form_value(const Element& form, std::string_view var);
// Every value of the field.
std::vector<std::string> form_values(const Element& form, std::string_view var);
bool has_field(const Element& form, std::string_view var);
// XEP-0004 §3.3 boolean: "1"/"true" are true.
bool form_bool(std::string_view value);

}  // namespace haven::xeps
