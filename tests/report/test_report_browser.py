"""Issue 13 acceptance: the HTML report of a 50-ring store rendered in headless Chromium.

The page loads nothing from outside (no URL in any src/href/url(), and the page's own
Content-Security-Policy would log a refusal to the console if it tried), holds the timeline
SVG with one row per ring, and logs no console message at all.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from keylife.report import Report, render_html

from .browser import load, screenshot
from .store50 import HOSTILE, RINGS


class _Tags(HTMLParser):
    """Every tag and attribute of a page, as the browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
                self.links.append(f"{tag} {name}={value}")
            if name == "style" and value and "url(" in value:
                self.links.append(f"{tag} style={value}")


def parse(html: str) -> _Tags:
    tags = _Tags()
    tags.feed(html)
    return tags


def test_report_renders_offline_with_a_row_per_ring(report50: Report, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(report50), encoding="utf-8")
    html = page.read_text(encoding="utf-8")
    tags = parse(html)
    assert tags.links == []
    assert not {"script", "img", "link", "iframe", "object", "embed"} & set(tags.tags)
    assert "url(" not in html and "@import" not in html

    loaded = load(page, tmp_path / "profile")
    assert loaded.console == []
    dom = loaded.dom
    assert dom.count('<svg id="timeline"') == 1
    rows = re.findall(r'<g class="ring" data-ring="([^"]+)"', dom)
    assert len(rows) == RINGS == len(set(rows))
    assert 'id="now"' in dom
    # the hostile policy-exception reason and revocation message arrive as text, not markup
    assert "<script>alert" not in dom and "<img" not in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert HOSTILE not in html

    shot = tmp_path / "report.png"
    assert screenshot(page, shot, tmp_path / "profile") == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_console_check_sees_a_fetch_and_a_script(tmp_path: Path) -> None:
    """The checks above can fail: a page that tries a fetch and a script is caught."""
    from keylife.report.html import CSP

    page = tmp_path / "bad.html"
    page.write_text(
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        f'content="{CSP}"></head><body><img src="http://127.0.0.1:9/x.png">'
        "<script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    loaded = load(page, tmp_path / "profile")
    assert len(loaded.console) >= 2
    tags = parse(page.read_text())
    assert tags.links == ["img src=http://127.0.0.1:9/x.png"] and "script" in tags.tags
