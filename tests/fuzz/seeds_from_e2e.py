#!/usr/bin/env python3
"""Seeds tests/fuzz/corpus/fuzz_stanza/ (and fuzz_stream/) with the stanzas the e2e tests send.

Collects the XML string literals in tests/e2e/*.cpp and *.py that start a stanza, glues adjacent
literal pieces, fills the variable parts with the fuzz harness's accounts, keeps what is
well-formed, and writes one file per stanza (named by a hash of its content, like libFuzzer).
Stanzas mentioning the staff's commands or inquiry JIDs are also written with a leading '!', the
harness's marker for "sent by sam, the supporter". Rerun after adding e2e tests; only new files
appear. Usage: tests/fuzz/seeds_from_e2e.py
"""
import hashlib
import pathlib
import re
import xml.dom.minidom

root = pathlib.Path(__file__).resolve().parents[2]
e2e = root / "tests" / "e2e"
out_stanza = root / "tests" / "fuzz" / "corpus" / "fuzz_stanza"
out_stream = root / "tests" / "fuzz" / "corpus" / "fuzz_stream"

STREAM_OPEN = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
               "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")

# Whatever an expression between literals was, one of the harness's accounts fits.
FILL = "bob@localhost"


def literals(text):
    """Stanza-looking expressions: runs of string literals joined by + and expressions."""
    for m in re.finditer(r"\"(<(?:iq|message|presence)\b(?:[^\"\\]|\\.)*)\"((?:\s*\+\s*(?:\"(?:[^\"\\]|\\.)*\"|[\w.()\[\]:>-]+(?:\([^()]*\))?))*)", text):
        pieces = [m.group(1)]
        for part in re.finditer(r"\+\s*(\"((?:[^\"\\]|\\.)*)\"|[^+\"]+)", m.group(2)):
            pieces.append(part.group(2) if part.group(2) is not None else FILL)
        yield "".join(pieces)
    # Python: f-strings and plain strings
    for m in re.finditer(r"f?\"(<(?:iq|message|presence)\b[^\"]*)\"|f?'(<(?:iq|message|presence)\b[^']*)'", text):
        s = m.group(1) or m.group(2)
        yield re.sub(r"\{[^}]*\}", FILL, s)


def well_formed(s):
    try:
        xml.dom.minidom.parseString("<r xmlns='jabber:client'>" + s + "</r>")
        return True
    except Exception:
        return False


def write(directory, data):
    directory.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    path = directory / name
    if not path.exists():
        path.write_bytes(data)
        return 1
    return 0


def main():
    seen = set()
    for f in sorted(list(e2e.glob("*.cpp")) + list(e2e.glob("*.py"))):
        for s in literals(f.read_text(errors="ignore")):
            s = s.encode().decode("unicode_escape", errors="ignore") if "\\" in s else s
            if s in seen or not well_formed(s):
                continue
            seen.add(s)
    added = 0
    for s in sorted(seen):
        data = s.encode()
        added += write(out_stanza, data)
        if any(k in s for k in ("commands", "team", "beratung", "peersupport", "+")):
            added += write(out_stanza, b"!" + data)
        added += write(out_stream, (STREAM_OPEN + s + "</stream:stream>").encode())
    print(f"seeds_from_e2e.py: {len(seen)} stanzas, {added} new files")


main()
