"""One self-contained HTML page: tables, pictures as data: URIs, no script.

Every piece of text on the page (paths, names, configuration values) goes
through ``html.escape``, so a file called ``<script>.jpg`` is shown, never
run. The page needs no network and no JavaScript; its width suits a laptop
screen at 80% zoom, and pictures shrink to the page's width.
"""

from __future__ import annotations

import base64
import dataclasses
from html import escape

from vdreid.report.figure import Picture

#: A table cell: its text, or (text, kind): "good" / "bad" colour it, "num" keeps
#: it on one line, right-aligned.
Cell = str | tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Figure:
    title: str
    picture: Picture
    caption: str = ""


@dataclasses.dataclass(frozen=True)
class Text:
    """Preformatted text (a configuration file)."""

    title: str
    text: str


Block = Table | Figure | Text


@dataclasses.dataclass(frozen=True)
class Page:
    title: str
    facts: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    blocks: tuple[Block, ...]
    footer: str = ""


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       margin: 0; background: #f6f6f4; line-height: 1.45; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 40px; background: #fff; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #e3e3e0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 18px; margin: 12px 0; }
dl.facts dt { color: #666; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
nav { margin: 14px 0 4px; font-size: 0.95em; } nav a { margin-right: 14px; color: #1e5fa8; }
.notes { background: #fff7e0; border-left: 4px solid #e0a800; padding: 8px 14px; margin: 14px 0; }
.notes p { margin: 4px 0; }
table { border-collapse: collapse; margin: 6px 0; font-size: 0.95em; }
th, td { border: 1px solid #d8d8d4; padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #f0f0ec; } td { overflow-wrap: anywhere; }
td.good { color: #0a7a32; font-weight: 600; } td.bad { color: #c22020; font-weight: 600; }
td.num { white-space: nowrap; text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #555; font-size: 0.9em; margin: 4px 0 0; }
figure { margin: 8px 0; } figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e0; }
figcaption { color: #555; font-size: 0.9em; margin-top: 4px; }
pre { background: #f4f4f1; padding: 12px; overflow-x: auto; font-size: 0.88em; }
footer { margin-top: 36px; color: #777; font-size: 0.85em; }
"""


def data_uri(picture: Picture) -> str:
    return "data:image/png;base64," + base64.b64encode(picture.png).decode("ascii")


def _anchor(i: int) -> str:
    return f"s{i + 1}"


def _cell(cell: Cell) -> str:
    text, kind = (cell, "") if isinstance(cell, str) else cell
    attr = f' class="{escape(kind)}"' if kind else ""
    return f"<td{attr}>{escape(text)}</td>"


def _block(i: int, block: Block) -> str:
    head = f'<h2 id="{_anchor(i)}">{escape(block.title)}</h2>'
    if isinstance(block, Figure):
        p = block.picture
        caption = f"<figcaption>{escape(block.caption)}</figcaption>" if block.caption else ""
        return (
            f'{head}<figure><img src="{data_uri(p)}" width="{p.width}" height="{p.height}" '
            f'alt="{escape(block.title)}">{caption}</figure>'
        )
    if isinstance(block, Text):
        return f"{head}<pre>{escape(block.text)}</pre>"
    header = "".join(f"<th>{escape(c)}</th>" for c in block.columns)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in block.rows)
    note = f'<p class="note">{escape(block.note)}</p>' if block.note else ""
    return f"{head}<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>{note}"


def render_page(page: Page) -> str:
    """The page as one HTML document (UTF-8 text)."""
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in page.facts)
    notes = (
        '<div class="notes">' + "".join(f"<p>{escape(n)}</p>" for n in page.notes) + "</div>"
        if page.notes
        else ""
    )
    nav = "".join(
        f'<a href="#{_anchor(i)}">{escape(b.title)}</a>' for i, b in enumerate(page.blocks)
    )
    blocks = "\n".join(_block(i, b) for i, b in enumerate(page.blocks))
    footer = f"<footer>{escape(page.footer)}</footer>" if page.footer else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(page.title)}</title><style>{STYLE}</style></head>\n"
        f"<body><main><h1>{escape(page.title)}</h1>"
        f'<dl class="facts">{facts}</dl>{notes}<nav>{nav}</nav>\n{blocks}\n{footer}'
        "</main></body></html>\n"
    )
