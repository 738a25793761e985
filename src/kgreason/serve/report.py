"""report.md → HTML for the page, with nothing in it that could run or fetch from elsewhere.

The reports are written by kgreason itself, but the runs folder is just files: a report may hold
anything. So raw HTML is not passed through (Python-Markdown's HTML block and inline processors
are removed, and the serialiser escapes what is left), links keep only http(s), mailto and `#`
targets, and an image is kept only when it names a PNG file beside the report, which the caller
maps to a URL of this server; any other image becomes its alt text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from xml.etree import ElementTree as ET

import markdown
from markdown.treeprocessors import Treeprocessor

MAX_REPORT_CHARS = 200_000
SAFE_LINK = re.compile(r"^(https?://|mailto:|#)", re.IGNORECASE)
LOCAL_PNG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*\.png$")

ImageUrl = Callable[[str], "str | None"]


class _Sanitise(Treeprocessor):
    def __init__(self, md: markdown.Markdown, image_url: ImageUrl | None) -> None:
        super().__init__(md)
        self.image_url = image_url

    def run(self, root: ET.Element) -> None:
        for parent in root.iter():
            for i, child in enumerate(list(parent)):
                if child.tag == "a":
                    href = child.get("href", "")
                    child.attrib.clear()
                    if SAFE_LINK.match(href):
                        child.set("href", href)
                        if not href.startswith("#"):
                            child.set("rel", "noopener noreferrer")
                            child.set("target", "_blank")
                elif child.tag == "img":
                    src, alt = child.get("src", ""), child.get("alt", "")
                    url = self.image_url(src) if self.image_url and LOCAL_PNG.match(src) else None
                    if url is None:
                        span = ET.Element("span", {"class": "img-missing"})
                        span.text = f"[image: {alt or src}]"
                        span.tail = child.tail
                        parent.remove(child)
                        parent.insert(i, span)
                    else:
                        child.attrib.clear()
                        child.set("src", url)
                        child.set("alt", alt)
                        child.set("loading", "lazy")


def render_markdown(text: str, image_url: ImageUrl | None = None) -> str:
    """Safe HTML for a report.md (see the module docstring); `image_url(name)` gives the URL of a
    PNG beside the report, or None to drop it."""
    md = markdown.Markdown(extensions=["tables", "fenced_code", "sane_lists"], output_format="html")
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    md.treeprocessors.register(_Sanitise(md, image_url), "kgreason_sanitise", 0)  # last, after links exist
    return md.convert(text[:MAX_REPORT_CHARS])
