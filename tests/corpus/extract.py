#!/usr/bin/env python3
"""Extract the SIP torture test messages of RFC 4475 and RFC 5118 from the RFC text.

Both RFCs carry their messages bit-exact in an appendix (RFC 4475 Appendix B, RFC 5118
Appendix A): a gzip-compressed tar archive, base64-encoded, between a line
"-- BEGIN MESSAGE ARCHIVE --" and a line "-- END MESSAGE ARCHIVE --". The RFCs' own recovery
rule (a Perl script printed just before the archive) keeps, of the lines between the markers,
those that are a single whitespace-delimited token; page furniture (the running header
"RFC 4475   SIP Torture Test Messages   May 2006", the footer "Sparks, et al.  Informational
[Page 41]", form feeds) has embedded spaces or nothing and falls out by the same rule.

Two traps: the Perl listing itself mentions both markers on one line
(`if (/-- BEGIN MESSAGE ARCHIVE --/ .. /-- END MESSAGE ARCHIVE --/)`), so only a line that is
the marker alone opens or closes the archive; and RFC 4475's archive holds a `test.dat` that no
section of the RFC describes (it is left out). RFC 5118's messages are kept without a file
extension.

Usage:
  extract.py RFC_TEXT OUT_DIR          e.g. extract.py rfc4475.txt /tmp/rfc4475
  extract.py --compare RFC_TEXT DIR    extract to a temporary directory and list the files
                                       that differ from DIR (exit 1 if any)
  extract.py --selftest                wrap this directory's messages in a synthetic RFC
                                       (Perl listing, page breaks, furniture) and check that
                                       they come back byte for byte

The RFC texts are at https://www.rfc-editor.org/rfc/rfc4475.txt and .../rfc5118.txt. The test
suite does not need them: the messages are committed beside this script, in rfc4475/ and
rfc5118/, and those copies are what the tests read. (They were taken from the MIT-licensed
poroh/ersip repository, test/message/, which holds the same archives unpacked; --compare
against the RFC text is how to check a copy, or to regenerate one.)
"""

import base64
import io
import os
import re
import sys
import tarfile
import tempfile

BEGIN = "-- BEGIN MESSAGE ARCHIVE --"
END = "-- END MESSAGE ARCHIVE --"
# Archive members no section of the RFC describes.
UNDESCRIBED = {"test.dat"}
TOKEN = re.compile(r"^\s*\S+\s*$")


def archive_base64(text):
    """The base64 text between the marker lines (the last such block, should there be more)."""
    blocks, current = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            current = []
        elif stripped == END:
            if current is not None:
                blocks.append("".join(current))
            current = None
        elif current is not None and TOKEN.match(line):
            current.append(stripped)
    if not blocks:
        raise SystemExit(f"no line {BEGIN!r} ... {END!r} in the input: is this RFC 4475 or 5118?")
    return blocks[-1]


def messages(text):
    """{file name: bytes} of every message in the RFC's archive."""
    data = base64.b64decode(archive_base64(text), validate=False)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            if not m.isfile():
                continue
            name = os.path.basename(m.name)
            if name in UNDESCRIBED or name.startswith("."):
                continue
            f = tar.extractfile(m)
            if f is not None:
                out[name] = f.read()
    return out


def rfc_number(text):
    m = re.search(r"Request for Comments:\s*(\d+)", text)
    return m.group(1) if m else None


def extract(text, out_dir):
    msgs = messages(text)
    strip_ext = rfc_number(text) == "5118"
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, body in sorted(msgs.items()):
        if strip_ext:
            name = os.path.splitext(name)[0]
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(body)
        written.append(name)
    return written


def read_rfc(path):
    with open(path, "rb") as f:
        return f.read().decode("latin-1")


def compare(rfc_path, committed):
    with tempfile.TemporaryDirectory() as tmp:
        names = extract(read_rfc(rfc_path), tmp)
        differ = []
        for n in names:
            mine = os.path.join(committed, n)
            with open(os.path.join(tmp, n), "rb") as f:
                theirs = f.read()
            if not os.path.exists(mine):
                differ.append(f"{n}: in the RFC, not in {committed}")
                continue
            with open(mine, "rb") as f:
                if f.read() != theirs:
                    differ.append(f"{n}: differs from the RFC's copy")
        for n in sorted(set(os.listdir(committed)) - set(names)):
            differ.append(f"{n}: in {committed}, not in the RFC")
    for d in differ:
        print(d)
    print(f"{len(names)} messages in the RFC, {len(differ)} differences")
    return 1 if differ else 0


def synthetic_rfc(number, files):
    """An RFC-shaped text around an archive of `files`: the recovery script with both
    markers on one line first, then the archive cut at 72 columns with page breaks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in sorted(files.items()):
            info = tarfile.TarInfo(name=f"torture/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        extra = b"not described anywhere\r\n"
        info = tarfile.TarInfo(name="torture/test.dat")
        info.size = len(extra)
        tar.addfile(info, io.BytesIO(extra))
    b64 = base64.b64encode(buf.getvalue()).decode()
    lines = [
        "Network Working Group",
        f"Request for Comments: {number}                                  May 2006",
        "",
        "   #!/usr/bin/perl",
        "   while(<>) {",
        f"     if (/{BEGIN}/ .. /{END}/) {{",
        "          if ( m/^\\s*[^\\s]+\\s*$/) {",
        "              $bdata = $bdata . $_;",
        "   print decode_base64($bdata);",
        "",
        f"   {BEGIN}",
    ]
    for i in range(0, len(b64), 68):
        lines.append("   " + b64[i : i + 68])
        if (i // 68) % 50 == 49:
            lines += [
                "",
                f"Sparks, et al.               Informational                     [Page {i // 3400 + 40}]",
                "\f",
                f"RFC {number}             SIP Torture Test Messages              May 2006",
                "",
            ]
    lines += [f"   {END}", "", "Authors' Addresses"]
    return "\n".join(lines) + "\n"


def selftest():
    here = os.path.dirname(os.path.abspath(__file__))
    for number, sub, ext in (("4475", "rfc4475", ""), ("5118", "rfc5118", ".dat")):
        d = os.path.join(here, sub)
        files = {}
        for n in os.listdir(d):
            with open(os.path.join(d, n), "rb") as f:
                files[n + ext] = f.read()
        text = synthetic_rfc(number, files)
        with tempfile.TemporaryDirectory() as tmp:
            rfc = os.path.join(tmp, f"rfc{number}.txt")
            with open(rfc, "w", encoding="latin-1") as f:
                f.write(text)
            if compare(rfc, d) != 0:
                raise SystemExit(f"selftest: RFC {number}: the messages did not come back intact")
    print("selftest: ok")
    return 0


def main(argv):
    if argv[1:] == ["--selftest"]:
        return selftest()
    if len(argv) == 4 and argv[1] == "--compare":
        return compare(argv[2], argv[3])
    if len(argv) == 3 and not argv[1].startswith("-"):
        names = extract(read_rfc(argv[1]), argv[2])
        print(f"{len(names)} messages written to {argv[2]}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
