"""A Sphinx extension for the bibliography: author-year labels, and links back to the citations.

The chapters cite in author-year form, "(Kingma and Welling, 2014)"; the bibliography's entries get
the same labels (pybtex's default would be "[KW14]"), sorted by author and year. Under each entry,
"Cited in" links to every place a chapter cites it (sphinxcontrib-bibtex links back only within the
bibliography's own page).
"""

from __future__ import annotations

from collections import Counter

from docutils import nodes
from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.application import Sphinx


def surname(person) -> str:
    """A person's surname as a reader writes it: with its particles ("van den Oord") and with LaTeX
    accents turned into letters ("S{\\o}nderby" is "Sønderby")."""
    parts = [*person.rich_prelast_names, *person.rich_last_names]
    return " ".join(part.render_as("text") for part in parts)


def author_year(entry) -> str:
    """"Kingma and Welling, 2014"; "Alemi et al., 2018" for three authors or more."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [surname(person) for person in people] or [entry.fields.get("title", "Anonymous")]
    who = names[0] if len(names) == 1 else f"{names[0]} and {names[1]}" if len(names) == 2 else f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year(entry) for entry in entries]
        repeated, seen = Counter(labels), Counter()
        for label in labels:  # two works with one label become "…, 2018a" and "…, 2018b"
            seen[label] += 1
            yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1] if repeated[label] > 1 else label


class AuthorYearStyle(PlainStyle):
    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def _cited_in(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Under each entry of the bibliography page, link to the places that cite it."""
    domain = app.env.get_domain("cite")
    key_of = {citation.citation_id: citation.key for citation in domain.citations}
    order = {name: i for i, name in enumerate(_reading_order(app))}
    for entry in doctree.findall(nodes.citation):
        key = next((key_of[i] for i in entry["ids"] if i in key_of), None)
        refs = [ref for ref in domain.citation_refs if key in {target.key for target in ref.targets}]
        refs = [ref for ref in refs if ref.docname != docname]
        if key is None or not refs:
            continue
        paragraph = nodes.paragraph(classes=["cited-in"])
        paragraph += nodes.Text("Cited in ")
        by_doc: dict[str, list] = {}
        for ref in sorted(refs, key=lambda ref: (order.get(ref.docname, len(order)), ref.line or 0)):
            by_doc.setdefault(ref.docname, []).append(ref)
        for n, (citing, places) in enumerate(by_doc.items()):
            if n:
                paragraph += nodes.Text("; ")
            uri = app.builder.get_relative_uri(docname, citing)
            title = app.env.titles[citing].astext()
            for i, place in enumerate(places):
                text = title if i == 0 else f"{i + 1}"
                if i:
                    paragraph += nodes.Text(" ")
                paragraph += nodes.reference("", text, internal=True, refuri=f"{uri}#{place.citation_ref_id}")
        paragraph += nodes.Text(".")
        entry += paragraph


def _reading_order(app: Sphinx) -> list[str]:
    """The documents in the order of the table of contents."""
    order, todo = [], [app.config.root_doc]
    includes = app.env.toctree_includes
    while todo:
        doc = todo.pop(0)
        if doc not in order:
            order.append(doc)
            todo[:0] = includes.get(doc, [])
    return order


def setup(app: Sphinx) -> dict[str, bool]:
    register_plugin("pybtex.style.labels", "author_year_labels", AuthorYearLabels)
    register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle)
    app.connect("doctree-resolved", _cited_in)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
