"""A tiny document model (headings, paragraphs, lists, tables, images), rendered as Markdown or
HTML."""
import html


class Document:
    """An ordered list of blocks; render with to_markdown() or to_html()."""

    def __init__(self, title: str):
        self.title = title
        self.blocks = []

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(("heading", level, text))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def bullets(self, items: list) -> None:
        self.blocks.append(("bullets", list(items)))

    def table(self, header: list, rows: list) -> None:
        self.blocks.append(("table", list(header), [list(r) for r in rows]))

    def image(self, path: str, alt: str, caption: str) -> None:
        self.blocks.append(("image", path, alt, caption))

    def to_markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for block in self.blocks:
            out += _MARKDOWN[block[0]](*block[1:]) + [""]
        return "\n".join(out)

    def to_html(self) -> str:
        body = "\n".join(_HTML[block[0]](*block[1:]) for block in self.blocks)
        title = html.escape(self.title)
        return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n"
                f"<style>{_CSS}</style></head>\n<body>\n<h1>{title}</h1>\n{body}\n</body></html>\n")


def _cell_md(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table_md(header, rows) -> list:
    lines = ["| " + " | ".join(_cell_md(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(_cell_md(c) for c in row) + " |" for row in rows]


_MARKDOWN = {
    "heading": lambda level, text: ["#" * level + " " + text],
    "paragraph": lambda text: [text],
    "bullets": lambda items: [f"- {item}" for item in items],
    "table": _table_md,
    "image": lambda path, alt, caption: [f"![{alt}]({path})", "", f"*{caption}*"],
}


def _table_html(header, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>\n"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


_HTML = {
    "heading": lambda level, text: f"<h{level}>{html.escape(text)}</h{level}>",
    "paragraph": lambda text: f"<p>{html.escape(text)}</p>",
    "bullets": lambda items: "<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in items)
    + "</ul>",
    "table": _table_html,
    "image": lambda path, alt, caption: (
        f"<figure><img src=\"{html.escape(path)}\" alt=\"{html.escape(alt)}\">"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"),
}

_CSS = ("body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #bbb;padding:3px 6px}"
        "img{max-width:100%}figcaption{font-style:italic;color:#444}")
