"""Step cards: every stage leaves one HTML page a person can open (and MLflow keeps it with the run)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any


class Card:
    """A small HTML report built from tables, text and images."""

    def __init__(self, name: str, title: str) -> None:
        self.name = name
        self.title = title
        self.parts: list[str] = []
        self.images: list[Path] = []

    def table(self, heading: str, rows: dict[str, Any]) -> Card:
        body = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items()
        )
        self.parts.append(f"<h2>{html.escape(heading)}</h2><table>{body}</table>")
        return self

    def grid(self, heading: str, columns: list[str], rows: list[list[Any]]) -> Card:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows
        )
        self.parts.append(f"<h2>{html.escape(heading)}</h2><table><tr>{head}</tr>{body}</table>")
        return self

    def text(self, heading: str, text: str) -> Card:
        self.parts.append(f"<h2>{html.escape(heading)}</h2><pre>{html.escape(text)}</pre>")
        return self

    def image(self, heading: str, path: Path) -> Card:
        # embedded, so the one file opens anywhere (MLflow UI, a laptop, a CI artifact)
        data = base64.b64encode(Path(path).read_bytes()).decode()
        self.parts.append(f'<h2>{html.escape(heading)}</h2><img src="data:image/png;base64,{data}"/>')
        self.images.append(Path(path))
        return self

    def html(self) -> str:
        style = (
            "body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}img{max-width:32em}"
        )
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(self.title)}</h1>{''.join(self.parts)}"
            "</body></html>"
        )

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}_card.html"
        path.write_text(self.html(), encoding="utf-8")
        return path


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)
