"""Build the English and Korean LibreOffice-help corpora shipped in ``src/undo/data/corpora``.

Source: the Debian packages ``libreoffice-help-en-us`` and ``libreoffice-help-ko``. Both contain the same
set of help pages (``usr/share/libreoffice/help/<lang>/text/.../*.html``) with the same relative paths,
and every translatable block element carries an ``id="par_id..."``/``id="hd_id..."`` attribute that is
identical across languages.

Per language, for each help page (sorted by relative path):

* extract the visible text of every block element (p, h, h1-h6, li, td) whose id starts with
  ``par_id``/``hd_id`` (inline markup flattened, whitespace collapsed, page chrome skipped; of the
  hidden system/module variants, e.g. Command (macOS) vs Ctrl, only the default one is kept);
* Korean only: drop paragraphs that were left untranslated (kept only when Hangul syllables
  U+AC00..U+D7A3 make up at least half of the letters);
* deduplicate paragraphs globally within the language (first occurrence wins);
* a document is a page's kept paragraphs joined with "\\n"; pages with none are dropped;
* split: ``validation`` if int(sha256(relative path)) % 20 == 0, else ``train`` (same rule for both
  languages, so a page is in the same split in both).

Output: ``libreoffice_{en,ko}.jsonl.xz`` (one JSON document per line, sorted by source, xz preset
9|extreme) and ``NOTICE.md``. The output is byte-identical on rerun.

Usage::

    uv run python scripts/extract_corpora.py                 # apt-get download into a temp dir
    uv run python scripts/extract_corpora.py --debs /tmp/deb # use already downloaded .deb files

Standard library only (needs ``dpkg-deb``, and ``apt-get`` when --debs is not given).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from debian_packages import deb_version, unpack

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "src" / "undo" / "data" / "corpora"

# language code -> (Debian package, help directory name)
LANGS = {
    "en": ("libreoffice-help-en-us", "en-US"),
    "ko": ("libreoffice-help-ko", "ko"),
}
HELP_ROOT = Path("usr/share/libreoffice/help")

BLOCK_TAGS = {"p", "h", "h1", "h2", "h3", "h4", "h5", "h6", "li", "td"}
ID_PREFIXES = ("par_id", "hd_id")
CHROME_TAGS = {"header", "aside", "nav", "script", "style", "footer"}
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
# Tags that separate words when they occur inside a captured block (everything else is inline).
SEPARATOR_TAGS = BLOCK_TAGS | {"br", "div", "table", "tr", "th", "ul", "ol", "pre", "hr", "img"}

N_SPLIT_BUCKETS = 20  # validation = bucket 0 -> ~5%
XZ_PRESET = 9 | lzma.PRESET_EXTREME


class _BlockExtractor(HTMLParser):
    """Collect the text of id-carrying block elements of one help page, in page order.

    Skipped: page chrome (CHROME_TAGS) and elements with a ``hidden`` attribute, except the
    ``id="default..."`` variants. The latter are LibreOffice's system/module switches, e.g.
    ``<span hidden id="MAC...">Command</span><span hidden id="default...">Ctrl</span>``, of which the
    help's JavaScript reveals exactly one; without a system/module match it reveals the default.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._skip_tag: str | None = None  # tag of the outermost skipped element
        self._skip_depth = 0
        self._tag: str | None = None  # tag of the block being captured
        self._depth = 0  # nesting depth of self._tag inside the captured block
        self._parts: list[str] = []

    def _flush(self) -> None:
        if self._tag is not None:
            text = " ".join("".join(self._parts).split())
            if text:
                self.blocks.append(text)
        self._tag, self._depth, self._parts = None, 0, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth += 1
            return
        attr = dict(attrs)
        ident = attr.get("id") or ""
        if tag not in VOID_TAGS and (tag in CHROME_TAGS or ("hidden" in attr and not ident.startswith("default"))):
            self._skip_tag, self._skip_depth = tag, 1
            return
        if tag in BLOCK_TAGS and ident.startswith(ID_PREFIXES):
            self._flush()  # an unclosed previous block ends here (HTML implicit close)
            self._tag, self._depth = tag, 1
            return
        if self._tag is not None:
            if tag == self._tag:
                self._depth += 1
            if tag in SEPARATOR_TAGS:
                self._parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._tag is not None and self._skip_tag is None and tag in SEPARATOR_TAGS:
            self._parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if self._skip_depth == 0:
                    self._skip_tag = None
            return
        if self._tag is None:
            return
        if tag == self._tag:
            self._depth -= 1
            if self._depth == 0:
                self._flush()
                return
        if tag in SEPARATOR_TAGS:
            self._parts.append(" ")

    def handle_data(self, data: str) -> None:
        if self._tag is not None and self._skip_tag is None:
            self._parts.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def extract_blocks(html: str) -> list[str]:
    parser = _BlockExtractor()
    parser.feed(html)
    parser.close()
    return parser.blocks


def is_mostly_hangul(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    hangul = sum(1 for c in letters if "\uac00" <= c <= "\ud7a3")
    return 2 * hangul >= len(letters)


def split_of(source: str) -> str:
    bucket = int(hashlib.sha256(source.encode("utf-8")).hexdigest(), 16) % N_SPLIT_BUCKETS
    return "validation" if bucket == 0 else "train"


@dataclass
class Doc:
    source: str
    paragraphs: list[str]
    split: str

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)


def build_corpus(help_dir: Path, lang: str) -> list[Doc]:
    files = sorted(p.relative_to(help_dir).as_posix() for p in help_dir.rglob("*.html"))
    seen: set[str] = set()
    docs: list[Doc] = []
    for rel in files:
        kept = []
        for para in extract_blocks((help_dir / rel).read_text(encoding="utf-8")):
            if lang == "ko" and not is_mostly_hangul(para):
                continue
            if para in seen:
                continue
            seen.add(para)
            kept.append(para)
        if kept:
            docs.append(Doc(rel, kept, split_of(rel)))
    return docs


def write_jsonl_xz(docs: list[Doc], path: Path) -> None:
    lines = [
        json.dumps({"text": d.text, "source": d.source, "split": d.split}, ensure_ascii=False)
        for d in sorted(docs, key=lambda d: d.source)
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=XZ_PRESET))


def copyright_lines(root: Path, package: str) -> list[str]:
    """The Copyright field of the ``Files: *`` stanza of the package's Debian copyright file."""
    path = root / "usr/share/doc" / package / "copyright"
    out: list[str] = []
    in_star = in_field = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("Files:"):
            in_star, in_field = line.split(":", 1)[1].strip() == "*", False
        elif in_star and line.startswith("Copyright:"):
            in_field = True
            out.append(line.split(":", 1)[1].strip())
        elif in_star and in_field and line.startswith((" ", "\t")):
            out.append(line.strip())
        else:
            in_field = False
    return out


def notice_text(debs: dict[str, Path], copyrights: list[str]) -> str:
    pkgs = "\n".join(
        f"- `{LANGS[lang][0]}` version `{deb_version(deb)}` (`{deb.name}`)" for lang, deb in sorted(debs.items())
    )
    cr = "\n".join(f"> {line}" for line in copyrights)
    return f"""# LibreOffice help corpora: provenance and license

`libreoffice_en.jsonl.xz` and `libreoffice_ko.jsonl.xz` contain text extracted from the
LibreOffice help pages (English and Korean) as shipped in these Debian 12 (bookworm) packages:

{pkgs}

The text is derived from the LibreOffice help, which is licensed under the Mozilla Public
License, v. 2.0 (MPL-2.0, https://mozilla.org/MPL/2.0/). The extracted corpora are distributed
under the same license. Copyright remains with the original holders: The Document Foundation and
the LibreOffice contributors, including the translators of the Korean help (and, for material
inherited from OpenOffice.org, Oracle and/or its affiliates; some files incorporate work licensed
to the Apache Software Foundation under the Apache License 2.0). The Debian copyright file of the
packages (`usr/share/doc/<package>/copyright`) lists, for `Files: *`:

{cr}

## What was extracted

For each help page (`usr/share/libreoffice/help/<lang>/...html`), the visible text of the block
elements carrying a `par_id`/`hd_id` id (page chrome removed, inline markup flattened, whitespace
collapsed). Korean paragraphs left untranslated (fewer than half of their letters are Hangul
syllables) are dropped. Paragraphs are deduplicated within each language (first occurrence, pages
in sorted path order). One JSON line per page: `{{"text": paragraphs joined by "\\n", "source":
relative path, "split": "train" | "validation"}}`; a page is in `validation` when
`int(sha256(path)) % 20 == 0`, identically for both languages.

## Regenerating

    uv run python scripts/extract_corpora.py              # downloads the packages with apt-get
    uv run python scripts/extract_corpora.py --debs DIR   # or use .deb files already in DIR

The output is byte-identical on rerun with the same package versions.
"""


def summarize(lang: str, docs: list[Doc]) -> None:
    for split in ("train", "validation", "all"):
        sel = [d for d in docs if split == "all" or d.split == split]
        n_par = sum(len(d.paragraphs) for d in sel)
        n_chr = sum(len(p) for d in sel for p in d.paragraphs)
        n_doc_chr = sum(len(d.text) for d in sel)
        n_bytes = sum(len(d.text.encode("utf-8")) for d in sel)
        print(
            f"{lang} {split:<10} documents={len(sel):5d} paragraphs={n_par:6d} "
            f"paragraph_chars={n_chr:8d} document_chars={n_doc_chr:8d} utf8_bytes={n_bytes:8d}"
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--debs", type=Path, help="folder holding the .deb files (default: apt-get download)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="extract_corpora_") as tmp:
        unpacked = unpack([pkg for pkg, _ in LANGS.values()], args.debs, Path(tmp))
        debs = {lang: unpacked[pkg][0] for lang, (pkg, _) in LANGS.items()}

        args.out.mkdir(parents=True, exist_ok=True)
        copyrights: list[str] = []
        for lang in sorted(debs):
            pkg, help_name = LANGS[lang]
            root = unpacked[pkg][1]
            if not copyrights:
                copyrights = copyright_lines(root, pkg)
            docs = build_corpus(root / HELP_ROOT / help_name, lang)
            out_file = args.out / f"libreoffice_{lang}.jsonl.xz"
            write_jsonl_xz(docs, out_file)
            summarize(lang, docs)
            print(f"wrote {out_file} ({out_file.stat().st_size} bytes)", flush=True)
        notice = args.out / "NOTICE.md"
        notice.write_text(notice_text(debs, copyrights), encoding="utf-8")
        print(f"wrote {notice}")


if __name__ == "__main__":
    main()
