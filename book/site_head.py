"""A Sphinx extension for what every page says about itself, and for the pages a site needs besides.

- Every page gets a description and OpenGraph tags (``<meta name="description">``,
  ``og:title``, ``og:description``, ``og:type``, ``og:site_name``; with ``html_baseurl`` set, also
  ``og:url`` and ``og:image``), so that a link to the book shared anywhere shows its title and what
  it is about. The text is the ``site_description`` configuration value.
- sphinx-thebe, which Jupyter Book always loads, adds its configuration script and its loader to
  every page; the book runs no code in the browser, and the script, added twice by Jupyter Book 1.0,
  raised a JavaScript error on every page. Its scripts, stylesheet and inline configuration are left
  out of every page.
- The theme starts in the reader's system colour mode without logging an error on a first visit.
- ``404.md``, outside the table of contents, is built too (sphinx-external-toc excludes every file
  the table of contents does not list, and this runs after it): the page a web server shows for a
  missing address. With ``html_baseurl`` set its links are made absolute (``<base href>``), since it
  is served at any depth.
"""

from __future__ import annotations

import re
from html import escape, unescape
from urllib.parse import urljoin

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config

NOT_FOUND = "404"  # the not-found page's document name, at the root of the source folder
OG_IMAGE = "_static/favicon.svg"


def _configure(app: Sphinx, config: Config) -> None:
    """Take the 404 page back out of the files sphinx-external-toc excluded."""
    config.exclude_patterns = [p for p in config.exclude_patterns if p.rsplit(".", 1)[0] != NOT_FOUND]


def _drop_thebe_config(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """sphinx-thebe's inline configuration block, which nothing on the page reads."""
    for node in list(doctree.findall(nodes.raw)):
        if "text/x-thebe-config" in node.astext():
            node.parent.remove(node)


def _is_thebe(asset) -> bool:
    name = getattr(asset, "filename", None) or str(asset)
    body = (getattr(asset, "attributes", None) or {}).get("body", "")
    return "thebe" in (name or "") or "THEBE_JS_URL" in (body or "")


def _page_head(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    # The page's first script reads the reader's stored colour mode, else this one: without it the
    # theme logs an error on a first visit, then uses "auto" anyway.
    context["default_mode"] = context.get("default_mode") or "auto"
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [asset for asset in context[key] if not _is_thebe(asset)]
    site = app.config.html_title or app.config.project
    title = unescape(re.sub(r"<[^>]+>", "", context.get("title") or "")).strip() or site
    description = app.config.site_description
    tags = {
        "og:title": title if pagename == app.config.root_doc else f"{title} — {site}",
        "og:description": description,
        "og:type": "website" if pagename == app.config.root_doc else "article",
        "og:site_name": site,
    }
    base = app.config.html_baseurl
    if base:
        base = base.rstrip("/") + "/"
        tags["og:url"] = urljoin(base, app.builder.get_target_uri(pagename))
        tags["og:image"] = urljoin(base, OG_IMAGE)
    lines = [f'<meta name="description" content="{escape(description)}" />']
    lines += [f'<meta property="{key}" content="{escape(value)}" />' for key, value in tags.items()]
    if pagename == NOT_FOUND and base:
        lines.append(f'<base href="{escape(base)}" />')
    context["metatags"] = context.get("metatags", "") + "\n" + "\n".join(lines) + "\n"


def setup(app: Sphinx) -> dict[str, bool]:
    app.add_config_value("site_description", "", "html")
    app.connect("config-inited", _configure, priority=950)  # after sphinx-external-toc (900)
    app.connect("doctree-resolved", _drop_thebe_config, priority=900)  # after sphinx-thebe adds it
    app.connect("html-page-context", _page_head)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
